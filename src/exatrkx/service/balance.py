"""Spread events over several Triton servers, as Envoy does in a cluster, from the client.

:class:`MultiServerRunner` holds one :class:`exatrkx.client.Runner` per server and has the
same ``run`` / ``run_many`` interface. Each event goes to one live server, chosen by

- ``"least"``: the server with the fewest events outstanding from this client (ties: in
  turn), which is what Envoy's least-request balancing does with full information;
- ``"round_robin"``: the live servers in turn.

Health: a request that fails makes the runner probe its server's readiness; a server that
does not answer ready is dropped, and the event (as every other event in flight there) is
sent again to another live server. A background thread re-probes every server each
``health_interval_s`` seconds, so a dropped server comes back once it is ready again. A
request that fails on a server that is still ready (a refused event, a bad input) is not
retried: it would fail anywhere.
"""

from __future__ import annotations

import inspect
import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from exatrkx.contract import Protocol
from exatrkx.errors import InputError, RemoteError
from exatrkx.service.runner import EventResult, Runner, make_runner, run_concurrently
from exatrkx.service.transport import probe_ready

POLICIES = ("least", "round_robin")

#: ``probe(url, protocol, timeout_s) -> ready``.
Probe = Callable[[str, Protocol, float], bool]
#: ``factory(option, url, protocol, **kwargs) -> Runner``.
RunnerFactory = Callable[..., Runner]


@dataclass
class ServerState:
    """One server as the balancer sees it.

    Attributes:
        url: ``host:port``.
        runner: its per-server runner (None until connected, or while it is down).
        alive: taking events.
        outstanding: events sent there and not yet answered.
        served: events answered.
        failures: requests that failed there.
    """

    url: str
    runner: Runner | None = None
    alive: bool = False
    outstanding: int = 0
    served: int = 0
    failures: int = 0


class NoServerError(RemoteError):
    """No server is alive (every one was dropped)."""


class MultiServerRunner:
    """Runs events for one service option over several servers (see the module docstring).

    Args:
        urls: ``host:port`` of each server (gRPC or HTTP, as ``protocol``).
        option: service option 1-5.
        protocol: ``"grpc"`` or ``"http"``.
        policy: ``"least"`` (least outstanding events) or ``"round_robin"``.
        concurrency: events in flight at once over all servers; every server's runner gets
            as many connections, so that all of them may land on one survivor.
        health_interval_s: period of the background readiness probes (0: none; failures
            still drop a server at once).
        probe_timeout_s: timeout of one readiness probe.
        max_attempts: servers one event may be tried on (default: the number of servers).
        probe: readiness check (for tests; default :func:`probe_ready`).
        runner_factory: builds a server's runner (default :func:`exatrkx.client.make_runner`).
        **runner_kwargs: passed to ``runner_factory`` (``shm``, ``weights_dir``, ``tls``,
            ...; ``tls`` also goes to the readiness probes).

    Raises:
        InputError: bad policy, option or URLs; NoServerError: no server is ready.
    """

    def __init__(self, urls: Sequence[str], option: int, protocol: Protocol = "grpc",
                 policy: str = "least", *, concurrency: int = 1,
                 health_interval_s: float = 1.0, probe_timeout_s: float = 1.0,
                 max_attempts: int | None = None, probe: Probe | None = None,
                 runner_factory: RunnerFactory | None = None, **runner_kwargs: Any) -> None:
        if policy not in POLICIES:
            raise InputError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if option == 0:
            raise InputError("option 0 runs in process: there is no server to balance over")
        if not urls:
            raise InputError("give at least one server URL")
        if len(set(urls)) != len(urls):
            raise InputError(f"duplicate server URLs in {list(urls)}")
        if concurrency < 1:
            raise InputError("concurrency must be >= 1")
        self.option = option
        self.protocol = protocol
        self.policy = policy
        self.concurrency = concurrency
        self.max_attempts = max_attempts or len(urls)
        self.probe_timeout_s = probe_timeout_s
        tls = runner_kwargs.get("tls")
        self._probe: Probe = probe or (
            probe_ready if tls is None
            else lambda url, protocol, timeout: probe_ready(url, protocol, timeout, tls=tls))
        self._factory: RunnerFactory = runner_factory or make_runner
        self._kwargs = dict(runner_kwargs)
        if runner_factory is None and "retries" in inspect.signature(make_runner).parameters:
            # fail over to another server at once instead of retrying a dead one
            self._kwargs.setdefault("retries", 0)
        self.servers = [ServerState(url) for url in urls]
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._stop = threading.Event()
        self.retries = 0
        for server in self.servers:
            self._connect(server)
        if not any(s.alive for s in self.servers):
            raise NoServerError(f"no ready Triton server among {', '.join(urls)}")
        self._health: threading.Thread | None = None
        if health_interval_s > 0:
            self._health = threading.Thread(target=self._health_loop, args=(health_interval_s,),
                                            name="exatrkx-health", daemon=True)
            self._health.start()

    # ------------------------------------------------------------------ health

    def _connect(self, server: ServerState) -> None:
        """Build the server's runner when it is ready; leave it down otherwise."""
        if not self._probe(server.url, self.protocol, self.probe_timeout_s):
            return
        try:
            runner = self._factory(self.option, server.url, self.protocol,
                                   concurrency=self.concurrency, **self._kwargs)
        except RemoteError:
            return
        with self._lock:
            server.runner = runner
            server.alive = True

    def _drop(self, server: ServerState) -> None:
        with self._lock:
            server.alive = False

    def check_health(self) -> list[str]:
        """Probe every server now: drop the unready, bring back the ready; live URLs."""
        for server in self.servers:
            ready = self._probe(server.url, self.protocol, self.probe_timeout_s)
            if not ready:
                self._drop(server)
            elif not server.alive:
                if server.runner is None:
                    self._connect(server)
                else:
                    with self._lock:
                        server.alive = True
        return self.alive_urls

    def _health_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.check_health()

    @property
    def alive_urls(self) -> list[str]:
        """URLs of the servers taking events."""
        with self._lock:
            return [s.url for s in self.servers if s.alive]

    # ------------------------------------------------------------------ balancing

    def _pick(self, exclude: set[str]) -> ServerState:
        with self._lock:
            live = [s for s in self.servers if s.alive and s.runner is not None
                    and s.url not in exclude]
            if not live:
                raise NoServerError("no live Triton server left"
                                    + (f" (tried {', '.join(sorted(exclude))})" if exclude
                                       else ""))
            start = next(self._turn) % len(live)
            ordered = live[start:] + live[:start]
            chosen = (min(ordered, key=lambda s: s.outstanding) if self.policy == "least"
                      else ordered[0])
            chosen.outstanding += 1
            return chosen

    def run_on(self, features: np.ndarray | torch.Tensor) -> tuple[EventResult, str]:
        """One event: its result and the URL of the server that answered.

        Raises:
            InputError: bad features or refused by a ready server; RemoteError: a ready
            server failed; NoServerError: every server tried is down.
        """
        tried: set[str] = set()
        while True:
            server = self._pick(tried)
            runner = server.runner
            assert runner is not None
            try:
                result = runner.run(features)
            except RemoteError:
                with self._lock:
                    server.outstanding -= 1
                    server.failures += 1
                if self._probe(server.url, self.protocol, self.probe_timeout_s):
                    raise  # the server is fine: the request itself failed
                self._drop(server)
                tried.add(server.url)
                if len(tried) >= self.max_attempts:
                    raise
                with self._lock:
                    self.retries += 1
                continue
            with self._lock:
                server.outstanding -= 1
                server.served += 1
            return result, server.url

    def run(self, features: np.ndarray | torch.Tensor) -> EventResult:
        """One event: features f32 ``[N, 3]`` -> labels i64 ``[N]`` and timing."""
        return self.run_on(features)[0]

    def run_many(self, events: Iterable[np.ndarray | torch.Tensor],
                 concurrency: int | None = None) -> list[EventResult]:
        """Many events with up to ``concurrency`` (default: the runner's) in flight."""
        return run_concurrently(self.run, events,
                                min(concurrency or self.concurrency, self.concurrency))

    def served(self) -> dict[str, int]:
        """Events answered per server URL."""
        with self._lock:
            return {s.url: s.served for s in self.servers}

    def close(self) -> None:
        """Stop the health probes and close every server's runner."""
        self._stop.set()
        if self._health is not None:
            self._health.join(timeout=5.0)
        for server in self.servers:
            if server.runner is not None:
                server.runner.close()
                server.runner = None
            server.alive = False

    def __enter__(self) -> MultiServerRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_urls(text: str) -> list[str]:
    """``"h:1,h:2"`` -> ``["h:1", "h:2"]`` (order kept, blanks dropped).

    Raises:
        InputError: empty list.
    """
    urls = [u.strip() for u in text.split(",") if u.strip()]
    if not urls:
        raise InputError(f"give one or more comma-separated HOST:PORT, got {text!r}")
    return urls


__all__ = ["POLICIES", "MultiServerRunner", "NoServerError", "ServerState", "parse_urls",
           "probe_ready"]
