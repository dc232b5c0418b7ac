"""Load and soak checks of a running server: nothing lost, answers exact, memory flat.

- :func:`run_load` sends every event ``rounds`` times from ``clients`` concurrent
  connections for each service option and compares every answer with the in-process
  labels (option 0): the result counts errors and mismatches, which must both be zero;
- :func:`memory_trend` fits the growth of a series of memory samples, and
  :class:`MemorySampler` samples the server and each of its backend stubs in a thread and
  reports the slopes (whole run, second half, windows), for a soak test.

``benchmarks/load_test.py`` runs them on the shared events; the tests run small versions.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exatrkx.contract import Option, Protocol
from exatrkx.errors import ExatrkxError
from exatrkx.service.runner import make_runner
from exatrkx.util.procfs import group_processes
from exatrkx.util.timing import TimedRun


@dataclass
class LoadResult:
    """One option under load.

    Attributes:
        option: the service option.
        clients: concurrent connections.
        requests: events sent (events x rounds).
        errors: one message per event that got an error (after the client's retries).
        mismatches: events whose labels differ from the in-process ones.
        timed: client-side time of every answered event, wall time of the whole run.
        resent: requests the client sent again after a transient failure.
    """

    option: Option
    clients: int
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    timed: TimedRun = field(default_factory=TimedRun)
    resent: int = 0

    @property
    def ok(self) -> bool:
        """No error and every answer equal to option 0."""
        return not self.errors and not self.mismatches and self.requests > 0

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (the timed-run fields of :class:`TimedRun`)."""
        return {"option": int(self.option), "clients": self.clients,
                "requests": self.requests, "errors": len(self.errors),
                "mismatches": len(self.mismatches), "resent": self.resent,
                **self.timed.summary(),
                "latency_max_ms": max(self.timed.latencies_ms, default=float("nan")),
                "ok": self.ok}


def run_load(url: str, events: Sequence[np.ndarray], reference: Sequence[np.ndarray],
             option: Option, clients: int = 8, rounds: int = 3, protocol: Protocol = "grpc",
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
                answer = runner.run(events[i])
            except ExatrkxError as exc:
                return rnd, i, None, 0.0, str(exc)
            return rnd, i, answer.labels, answer.timing.total_ms, ""

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(one, work))
        result.timed.wall_s = time.perf_counter() - t0
        result.resent = runner.resent
    for rnd, i, labels, ms, error in answers:
        result.requests += 1
        if labels is None:
            result.errors.append(f"round {rnd} event {i}: {error}")
            continue
        result.timed.add(ms)
        if not np.array_equal(labels, reference[i]):
            result.mismatches.append(f"round {rnd} event {i}")
    return result


def memory_trend(times_s: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against ``times_s`` (units per second)."""
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if len(t) < 2 or float(np.ptp(t)) == 0.0:
        return 0.0
    return float(np.polyfit(t, v, 1)[0])


def process_label(args: Sequence[str], program: str) -> str:
    """``tritonserver``, or ``stub:<model>`` for a Python-backend stub (the model's folder
    from the ``.../<model>/<version>/model.py`` the stub is started with)."""
    if program == "triton_python_backend_stub":
        for arg in args[1:]:
            if arg.endswith("model.py"):
                return f"stub:{Path(arg).parents[1].name}"
        return "stub:?"
    return program


class MemorySampler:
    """Samples the resident memory of every process of a server's process group (the
    server and each backend stub, by model) in a thread, every ``every_s`` seconds.

    Use as a context manager; :meth:`summary` fits the slopes afterwards.
    """

    def __init__(self, pgid: int, every_s: float = 10.0) -> None:
        self.pgid = pgid
        self.every_s = every_s
        #: (seconds since start, {label: rss bytes})
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = 0.0

    def sample(self) -> None:
        """Take one sample now."""
        rss: dict[str, int] = {}
        for proc in group_processes(self.pgid):
            if proc.state in ("Z", "X"):
                continue
            label = process_label(proc.args, proc.program)
            rss[label] = rss.get(label, 0) + proc.rss_bytes
        self.samples.append((time.monotonic() - self._t0, rss))

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self._t0 = time.monotonic()
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def summary(self, windows: int = 3) -> dict[str, Any]:
        """Per process: first/last/max MB and slopes in MB/min over the whole run, its second
        half and each of ``windows`` equal windows (does the growth level off?)."""
        return memory_summary(self.samples, windows)


def memory_summary(samples: Sequence[tuple[float, Mapping[str, int]]],
                   windows: int = 3) -> dict[str, Any]:
    """See :meth:`MemorySampler.summary`; processes missing from a sample count as absent
    (a restarted stub starts a new series under the same label)."""
    labels = sorted({k for _, rss in samples for k in rss})
    out: dict[str, Any] = {}
    for label in labels:
        pts = [(t, rss[label] / 2**20) for t, rss in samples if label in rss]
        t = [p[0] for p in pts]
        mb = [p[1] for p in pts]
        half = len(pts) // 2
        bounds = np.linspace(t[0], t[-1], windows + 1) if len(t) > 1 else [t[0]] * (windows + 1)
        per_window = []
        for lo, hi in itertools.pairwise(bounds):
            sel = [(a, b) for a, b in pts if lo <= a <= hi]
            per_window.append(round(memory_trend([a for a, _ in sel], [b for _, b in sel])
                                    * 60, 3))
        out[label] = {"first_mb": round(mb[0], 1), "last_mb": round(mb[-1], 1),
                      "max_mb": round(max(mb), 1), "samples": len(pts),
                      "slope_mb_per_min": round(memory_trend(t, mb) * 60, 3),
                      "slope_2nd_half_mb_per_min": round(memory_trend(t[half:], mb[half:]) * 60,
                                                         3),
                      "slope_windows_mb_per_min": per_window}
    return out
