"""The multi-server scan: the whole-event options over 1..N Triton servers balanced by the client
(:class:`exatrkx.service.balance.MultiServerRunner`), against one server with more model instances.

Every setting runs on freshly started servers (package launcher, free ports) that are
stopped before the next setting starts; all servers of a setting share one repository.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exatrkx.contract import Option
from exatrkx.serve import ServerConfig, TritonServer, write_repository
from exatrkx.service.balance import MultiServerRunner
from exatrkx.study.config import SCALEOUT_OPTIONS
from exatrkx.util.timing import TimedRun


@dataclass
class ServersPoint:
    """One option at one concurrency on ``servers`` servers of ``instances`` instances."""

    servers: int
    instances: int
    option: Option
    concurrency: int
    timed: TimedRun = field(default_factory=TimedRun)
    per_server: list[int] = field(default_factory=list)
    mismatched: int = 0
    retries: int = 0

    @property
    def events(self) -> int:
        return self.timed.events


def server_settings(servers: Sequence[int]) -> list[tuple[int, int]]:
    """``(servers, instances)``: each count with one instance, then one server with each
    count > 1 as instances (the same number of model copies in one process tree)."""
    counts = sorted(set(servers))
    return [(n, 1) for n in counts] + [(1, n) for n in counts if n > 1]


@contextlib.contextmanager
def started_servers(repo: Path, count: int) -> Iterator[list[str]]:
    """``count`` Triton servers on one repository, free ports; gRPC URLs. All are stopped on
    exit, including when a later one fails to start."""
    config = ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=300,
                          exit_timeout=2)
    with contextlib.ExitStack() as stack:
        urls = []
        for _ in range(count):
            server = TritonServer(repo, config)
            stack.callback(server.cleanup)  # registered first: stopped even if start fails
            server.start()
            urls.append(server.grpc_url)
        yield urls


def measure_servers(urls: Sequence[str], option: Option, features: Sequence[np.ndarray],
                    reference: Sequence[np.ndarray] | None, concurrency: int, *,
                    passes: int = 1, warmup: int = 2, weights: Path | None = None,
                    policy: str = "least") -> ServersPoint:
    """``passes`` passes over the events with ``concurrency`` in flight over ``urls``."""
    point = ServersPoint(len(urls), 0, option, concurrency)
    feats = list(features)
    with MultiServerRunner(urls, option, policy=policy, concurrency=concurrency,
                           health_interval_s=0, weights_dir=weights) as runner:
        warm = max(warmup, concurrency, len(urls))
        runner.run_many((feats * warm)[:warm])
        before = runner.served()
        for _ in range(passes):
            t0 = time.perf_counter()
            results = runner.run_many(feats)
            point.timed.wall_s += time.perf_counter() - t0
            for i, result in enumerate(results):
                point.timed.add(result.timing.total_ms)
                if reference is not None:
                    point.mismatched += int(not np.array_equal(result.labels, reference[i]))
        point.per_server = [n - before[u] for u, n in runner.served().items()]
        point.retries = runner.retries
    return point


def run_servers_scan(weights: Path | None, scratch: Path, features: Sequence[np.ndarray],
                     reference: Sequence[np.ndarray] | None, servers: Sequence[int],
                     concurrency: Sequence[int], *,
                     options: Sequence[Option] = SCALEOUT_OPTIONS, threads: int = 1,
                     passes: int = 1, warmup: int = 2,
                     progress: Callable[[str], None] | None = None) -> list[ServersPoint]:
    """Every setting of :func:`server_settings` x option x concurrency."""
    points = []
    repos: dict[int, Path] = {}
    for n_servers, instances in server_settings(servers):
        if instances not in repos:
            repos[instances] = write_repository(
                scratch / f"models-scaleout-{instances}", weights, instances=instances,
                torch_threads=threads, libtorch_variant=False, floors=False)
        with started_servers(repos[instances], n_servers) as urls:
            for option in options:
                for conc in sorted(set(concurrency)):
                    point = measure_servers(urls, option, features, reference, conc,
                                            passes=passes, warmup=warmup, weights=weights)
                    point.instances = instances
                    points.append(point)
                    if progress is not None:
                        progress(f"servers: {n_servers} x {instances} instance(s) "
                                 f"S{int(option)} c{conc}: "
                                 f"{point.timed.throughput_eps:.1f} events/s")
    return points


def servers_rows(points: Sequence[ServersPoint]) -> list[dict[str, Any]]:
    """Table rows; ``speedup``: against one server with one instance, same option and
    concurrency (NaN without that point)."""
    base = {(p.option, p.concurrency): p.timed.throughput_eps for p in points
            if (p.servers, p.instances) == (1, 1)}
    rows = []
    for p in points:
        stats = p.timed.summary()
        rows.append({"servers": p.servers, "instances": p.instances, "option": int(p.option),
                     "concurrency": p.concurrency,
                     **{k: stats[k] for k in ("throughput_eps", "latency_mean_ms",
                                              "latency_p50_ms", "latency_p95_ms", "events")},
                     "speedup": p.timed.throughput_eps / base.get((p.option, p.concurrency),
                                                                  float("nan")),
                     "per_server": list(p.per_server),
                     "retries": p.retries, "identical_labels": p.mismatched == 0})
    return rows


def servers_verdict(rows: Sequence[dict[str, Any]], cores: int) -> str:
    """One sentence: the best multi-server and multi-instance speed-ups against 1 x 1."""
    def best(pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        cands = [r for r in rows if pred(r) and r["speedup"] == r["speedup"]]
        return max(cands, key=lambda r: r["speedup"]) if cands else None

    multi = best(lambda r: r["servers"] > 1)
    inst = best(lambda r: r["instances"] > 1)
    if multi is None:
        return "Only one server was timed: no scale-out comparison."
    text = (f"The best multi-server point ({multi['servers']} servers, S{multi['option']}, "
            f"{multi['concurrency']} in flight) runs at {multi['speedup']:.2f}x one server's "
            "throughput")
    if inst is not None:
        text += (f", one server with {inst['instances']} instances at best "
                 f"{inst['speedup']:.2f}x (S{inst['option']}, {inst['concurrency']} in flight)")
    gain = max(multi["speedup"], inst["speedup"] if inst else 0.0)
    return text + (f"; on this {cores}-core machine "
                   + ("more model copies add compute that one server left idle."
                      if gain >= 1.15 else
                      "more model copies cannot add compute, so splitting the load over "
                      "servers buys little beyond what one busy server already does."))


def servers_section(rows: Sequence[dict[str, Any]], cores: int,
                    fmt: Callable[[Any], str]) -> list[str]:
    """The report's Markdown section for :func:`servers_rows`."""
    options = ", ".join(str(o) for o in sorted({r["option"] for r in rows}))
    md = ["## Scale-out over servers", "",
          f"Options {options} over 1..N freshly started servers (one instance per model each, "
          "package launcher, free ports), balanced by the client "
          "(`exatrkx.service.balance.MultiServerRunner`, least outstanding events), against one "
          "server with as many instances; gRPC, one pass per point. *speed-up*: against one "
          "server with one instance, same option and events in flight.", ""]
    header = ["servers", "instances", "option", "in flight", "events/s", "speed-up",
              "p50 ms", "p95 ms", "events per server", "identical labels"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in sorted(rows, key=lambda r: (r["option"], r["concurrency"], r["servers"],
                                         r["instances"])):
        cells = [r["servers"], r["instances"], f"S{r['option']}", r["concurrency"],
                 r["throughput_eps"], r["speedup"], r["latency_p50_ms"], r["latency_p95_ms"],
                 "/".join(map(str, r["per_server"])), r["identical_labels"]]
        lines.append("| " + " | ".join(fmt(c) for c in cells) + " |")
    return [*md, *lines, "", servers_verdict(rows, cores), ""]


__all__ = ["ServersPoint", "measure_servers", "run_servers_scan",
           "server_settings", "servers_rows", "servers_section", "servers_verdict",
           "started_servers"]
