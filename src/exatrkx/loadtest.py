"""Load and soak checks of a running server: nothing lost, answers exact, memory flat.

- :func:`run_load` sends every event ``rounds`` times from ``clients`` concurrent
  connections for each service option and compares every answer with the in-process
  labels (option 0): the result counts errors and mismatches, which must both be zero;
- :func:`group_rss` reads the resident memory of ``tritonserver`` and its backend stubs
  (one process group) from ``/proc``; :func:`memory_trend` fits the growth of a series of
  samples, for a soak test.

``benchmarks/load_test.py`` runs them on the shared events; the tests run small versions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from exatrkx.client import RemoteError, make_runner
from exatrkx.serve.launcher import group_processes


@dataclass
class LoadResult:
    """One option under load.

    Attributes:
        option: the service option.
        clients: concurrent connections.
        requests: events sent (events x rounds).
        errors: one message per event that got an error (after the client's retries).
        mismatches: events whose labels differ from the in-process ones.
        wall_s: time of the whole run.
        latencies_ms: client-side time of every answered event.
        resent: requests the client sent again after a transient failure.
    """

    option: int
    clients: int
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    resent: int = 0

    @property
    def ok(self) -> bool:
        """No error and every answer equal to option 0."""
        return not self.errors and not self.mismatches and self.requests > 0

    def summary(self) -> dict[str, float | int | bool]:
        """JSON-ready figures."""
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {"option": self.option, "clients": self.clients, "requests": self.requests,
                "errors": len(self.errors), "mismatches": len(self.mismatches),
                "resent": self.resent, "wall_s": round(self.wall_s, 3),
                "events_per_s": round(self.requests / self.wall_s, 2) if self.wall_s else 0.0,
                "p50_ms": round(float(np.percentile(lat, 50)), 2),
                "p95_ms": round(float(np.percentile(lat, 95)), 2),
                "max_ms": round(float(lat.max()), 2), "ok": self.ok}


def run_load(url: str, events: Sequence[np.ndarray], reference: Sequence[np.ndarray],
             option: int, clients: int = 8, rounds: int = 3, protocol: str = "grpc",
             shm: bool = False, weights_dir: str | Path | None = None,
             timeout_s: float | None = None, retries: int | None = None,
             api_key: str | None = None) -> LoadResult:
    """Every event ``rounds`` times with ``clients`` events in flight; answers compared.

    Args:
        url: the server's ``host:port`` for ``protocol``.
        events: feature arrays.
        reference: the in-process labels of each event (option 0).
        option: service option 1-5.
        clients: concurrent connections (one worker thread each).
        rounds: passes over the events.
        protocol: ``"grpc"`` or ``"http"``.
        shm: pass tensors through system shared memory.
        weights_dir: weights of the local stages (options 1-3).
        timeout_s: client timeout of a request (None: the client default).
        retries: resends after transient failures (None: the client default).
        api_key: the server's key (None: ``$EXATRKX_API_KEY``).
    """
    result = LoadResult(option, clients)
    work = [(r, i) for r in range(rounds) for i in range(len(events))]
    with make_runner(option, url, protocol, shm, weights_dir=weights_dir,
                     concurrency=clients, timeout_s=timeout_s, retries=retries,
                     api_key=api_key) as runner:

        def one(item: tuple[int, int]) -> tuple[int, int, np.ndarray | None, float, str]:
            rnd, i = item
            try:
                labels, timing = runner.run(events[i])
            except RemoteError as exc:
                return rnd, i, None, 0.0, str(exc)
            return rnd, i, labels, timing.total_ms, ""

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(one, work))
        result.wall_s = time.perf_counter() - t0
        result.resent = runner.resent
    for rnd, i, labels, ms, error in answers:
        result.requests += 1
        if labels is None:
            result.errors.append(f"round {rnd} event {i}: {error}")
            continue
        result.latencies_ms.append(ms)
        if not np.array_equal(labels, reference[i]):
            result.mismatches.append(f"round {rnd} event {i}")
    return result


def group_rss(pgid: int) -> dict[str, int]:
    """Resident memory (bytes) of the processes of a process group, by program name.

    Returns:
        ``{"tritonserver": bytes, "triton_python_backend_stub": bytes (all stubs), ...,
        "processes": count}``; empty when the group is gone.
    """
    out: dict[str, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    count = 0
    for entry in group_processes(pgid):
        try:
            resident = int((entry / "statm").read_text().split()[1]) * page
            name = Path((entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode()).name
        except (OSError, ProcessLookupError, ValueError, IndexError):
            continue
        out[name] = out.get(name, 0) + resident
        count += 1
    if count:
        out["processes"] = count
    return out


def memory_trend(times_s: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against ``times_s`` (units per second)."""
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if len(t) < 2 or float(np.ptp(t)) == 0.0:
        return 0.0
    return float(np.polyfit(t, v, 1)[0])
