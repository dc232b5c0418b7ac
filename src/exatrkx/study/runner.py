"""The study's measurements, one phase after the other, on one embedded (or given) server.

1. reference: option 0 labels of every event (and the first warm-up);
2. main run, per transport: every option over every event, ``repeats`` passes, each pass one
   block per option (the order rotates between passes) and a block of Triton's floor models;
   Triton's statistics are read around each block, so the server-side figures of an option
   are its own;
3. concurrency scan (headline transport): options 0, 4, 5 with 1..N events in flight;
4. server scan: the remote options with 1 or 2 instances per model and with dynamic
   batching, each setting on a freshly started server (embedded server only);
5. perf_analyzer against the whole-event models;
6. multi-server scan (``servers`` given, embedded server only): options 4 and 5 over 1..N
   servers balanced by the client, against one server with N instances.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from exatrkx.allocator import tune_allocator
from exatrkx.client import (
    ClientConfig,
    ModelStats,
    Runner,
    Transport,
    floor_times,
    make_runner,
    stats_delta,
)
from exatrkx.io import Event
from exatrkx.study.config import (
    PERF_MODELS,
    SCAN_OPTIONS,
    SERVER_SCAN_OPTIONS,
    TRANSPORTS,
    StudyConfig,
)
from exatrkx.study.measure import group_cpu_s, has_shipped_weights, load_events, weights_or_random

Raw = dict[str, dict[str, int]]

#: Floor rows of the main run (``option`` column of the records).
FLOOR_ROWS = {"hop": "floor_hop", "ensemble5": "floor_ensemble5"}


@dataclass(frozen=True)
class Endpoint:
    """A running server as the study sees it.

    Attributes:
        grpc_url: gRPC ``host:port``.
        http_url: HTTP ``host:port``.
        pgid: the server's process group (CPU accounting); None for an external server.
        instances: model instances per model.
        batching: dynamic batching on embed and filter.
        metrics_url: the Prometheus endpoint (None: not known).
    """

    grpc_url: str
    http_url: str
    pgid: int | None = None
    instances: int = 1
    batching: bool = False
    metrics_url: str | None = None

    def url(self, protocol: str) -> str:
        return self.grpc_url if protocol == "grpc" else self.http_url

    def cpu_s(self) -> float:
        """CPU seconds of the server and its stubs so far (NaN for an external server)."""
        return float("nan") if self.pgid is None else group_cpu_s(self.pgid)


@dataclass
class Record:
    """One timed event (a row of ``timings.csv``)."""

    phase: str
    option: str
    transport: str
    concurrency: int
    instances: int
    batching: bool
    repeat: int
    event: str
    hits: int
    ms: float
    stages: dict[str, float] = field(default_factory=dict)
    request_ms: float = 0.0
    requests: int = 0


@dataclass
class OptionRun:
    """One option on one transport in the main run.

    Attributes:
        times: ms per event, every event of every pass.
        stage_sums: client-side ms per stage, summed over the events.
        request_ms: client-side ms in requests, summed.
        events: events timed.
        stats: raw server counters accumulated over the option's blocks.
        cpu_client_s: client CPU seconds in the option's blocks.
        cpu_server_s: server CPU seconds in the option's blocks.
        mismatched: events whose labels differ from option 0.
    """

    times: list[float] = field(default_factory=list)
    stage_sums: dict[str, float] = field(default_factory=dict)
    request_ms: float = 0.0
    events: int = 0
    stats: Raw = field(default_factory=dict)
    cpu_client_s: float = 0.0
    cpu_server_s: float = 0.0
    mismatched: set[str] = field(default_factory=set)

    def server(self) -> dict[str, ModelStats]:
        """Triton's per-request averages per model in this option's blocks."""
        return stats_delta({}, self.stats)


@dataclass
class ScanPoint:
    """Throughput and latency of one option at one concurrency on one server setting."""

    phase: str
    option: int
    transport: str
    concurrency: int
    instances: int
    batching: bool
    events: int = 0
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu_client_s: float = 0.0
    cpu_server_s: float = 0.0
    mismatched: int = 0
    stats: Raw = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Events per second."""
        return self.events / self.wall_s if self.wall_s > 0 else float("nan")


@dataclass
class PerfRun:
    """perf_analyzer's results (or why there are none)."""

    available: bool = False
    reason: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class StudyResult:
    """Everything the study measured; :mod:`exatrkx.study.report` turns it into the report."""

    config: StudyConfig
    origin: str = ""
    event_hits: list[int] = field(default_factory=list)
    weights: str = ""
    server: str = ""
    records: list[Record] = field(default_factory=list)
    main: dict[str, dict[str, OptionRun]] = field(default_factory=dict)
    scan: list[ScanPoint] = field(default_factory=list)
    server_scan: list[ScanPoint] = field(default_factory=list)
    perf: PerfRun = field(default_factory=PerfRun)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    machine_cores: int = 1
    network: list[Any] = field(default_factory=list)
    servers: list[Any] = field(default_factory=list)
    prometheus: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers

def add_delta(acc: Raw, before: Mapping[str, Mapping[str, int]],
              after: Mapping[str, Mapping[str, int]]) -> None:
    """Add the counter increases between two statistics snapshots to ``acc``."""
    for model, now in after.items():
        then = before.get(model, {})
        row = acc.setdefault(model, dict.fromkeys(now, 0))
        for key, value in now.items():
            row[key] = row.get(key, 0) + value - then.get(key, 0)


class _Clock:
    """Client and server CPU seconds and wall time over a block."""

    def __init__(self, endpoint: Endpoint | None) -> None:
        self.endpoint = endpoint

    def now(self) -> tuple[float, float, float]:
        server = self.endpoint.cpu_s() if self.endpoint is not None else 0.0
        return time.perf_counter(), time.process_time(), server


def _bar(cfg: StudyConfig, total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not cfg.progress,
                mininterval=1.0, dynamic_ncols=True, leave=False)


@contextlib.contextmanager
def embedded_server(weights: Path | None, scratch: Path, instances: int, batching: bool,
                    threads: int) -> Iterator[Endpoint]:
    """Write a repository and run Triton on free ports; stopped (stubs included) on exit."""
    from exatrkx.serve import ServerConfig, TritonServer, write_repository

    repo = write_repository(scratch / f"models-{instances}-{int(batching)}", weights,
                            instances=instances, dynamic_batching=batching,
                            torch_threads=threads, libtorch_variant=False)
    # control APIs open: perf_analyzer cannot send the key over gRPC (loopback server)
    config = ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=300,
                          exit_timeout=2, restricted=())
    with TritonServer(repo, config) as server:
        yield Endpoint(server.grpc_url, server.http_url, server.pid, instances, batching,
                       server.metrics_url)


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[Callable[[], None]]:
    """Turn SIGINT and SIGTERM into KeyboardInterrupt (main thread only), so cleanup runs.

    Yields a check that raises KeyboardInterrupt again once a signal has come: should a
    library swallow the first one (in a callback or a destructor), the study still stops
    at its next phase.
    """
    received: list[int] = []

    def check() -> None:
        if received:
            raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield check
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield check
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------- phases

def reference_labels(events: Sequence[Event], weights: Path | None,
                     warmup: int) -> list[np.ndarray]:
    """Option 0 labels of every event (after a warm-up)."""
    with make_runner(0, weights_dir=weights) as runner:
        for ev in events[:warmup]:
            runner.run(ev.features)
        return [runner.run(ev.features)[0] for ev in events]


def run_main(endpoint: Endpoint, transport: str, events: Sequence[Event],
             reference: Sequence[np.ndarray], cfg: StudyConfig, weights: Path | None,
             records: list[Record]) -> dict[str, OptionRun]:
    """Every option (and the floor) over every event on one transport, ``cfg.repeats`` passes.

    Returns:
        ``{"0": OptionRun, ..., "floor_hop": ..., "floor_ensemble5": ...}``.
    """
    protocol, shm = TRANSPORTS[transport]
    url = endpoint.url(protocol)
    options = cfg.timed_options
    runs = {str(o): OptionRun() for o in options} | {k: OptionRun() for k in FLOOR_ROWS.values()}
    clock = _Clock(endpoint)
    with contextlib.ExitStack() as stack:
        runners = {o: stack.enter_context(make_runner(o, url if o else None, protocol, shm,
                                                      weights_dir=weights)) for o in options}
        floor = stack.enter_context(Transport(ClientConfig(url=url, protocol=protocol,
                                                           shared_memory=shm)))
        stats = stack.enter_context(Transport(ClientConfig(url=url, protocol=protocol)))
        for ev in events[:cfg.warmup]:
            for runner in runners.values():
                runner.run(ev.features)
            floor_times(floor, ev.features)
        bar = stack.enter_context(_bar(cfg, cfg.repeats * (len(options) + 1) * len(events),
                                       f"main {transport}"))
        blocks: list[int | None] = [*options, None]
        for rep in range(cfg.repeats):
            shift = rep % len(blocks)
            for block in blocks[shift:] + blocks[:shift]:
                before = stats.statistics()
                t0 = clock.now()
                if block is None:
                    _floor_block(floor, events, transport, endpoint, rep, runs, records, bar)
                else:
                    _option_block(runners[block], block, events, reference, transport,
                                  endpoint, rep, runs[str(block)], records, bar)
                t1 = clock.now()
                keys = FLOOR_ROWS.values() if block is None else [str(block)]
                for key in keys:
                    add_delta(runs[key].stats, before, stats.statistics())
                    runs[key].cpu_client_s += t1[1] - t0[1]
                    runs[key].cpu_server_s += t1[2] - t0[2]
    return runs


def _option_block(runner: Runner, option: int, events: Sequence[Event],
                  reference: Sequence[np.ndarray], transport: str, endpoint: Endpoint,
                  rep: int, run: OptionRun, records: list[Record], bar: tqdm) -> None:
    for ev, ref in zip(events, reference, strict=True):
        labels, timing = runner.run(ev.features)
        if not np.array_equal(labels, ref):
            run.mismatched.add(ev.name)
        run.times.append(timing.total_ms)
        run.events += 1
        run.request_ms += timing.request_ms
        for name, ms in timing.stages_ms.items():
            run.stage_sums[name] = run.stage_sums.get(name, 0.0) + ms
        records.append(Record("main", str(option), transport, 1, endpoint.instances,
                              endpoint.batching, rep, ev.name, ev.num_hits, timing.total_ms,
                              dict(timing.stages_ms), timing.request_ms,
                              len(timing.requests)))
        bar.update()


def _floor_block(floor: Transport, events: Sequence[Event], transport: str,
                 endpoint: Endpoint, rep: int, runs: dict[str, OptionRun],
                 records: list[Record], bar: tqdm) -> None:
    for ev in events:
        for key, ms in floor_times(floor, ev.features).items():
            run = runs[FLOOR_ROWS[key]]
            run.times.append(ms)
            run.events += 1
            run.request_ms += ms
            records.append(Record("main", FLOOR_ROWS[key], transport, 1, endpoint.instances,
                                  endpoint.batching, rep, ev.name, ev.num_hits, ms, {}, ms, 1))
        bar.update()


def run_throughput(endpoint: Endpoint, transport: str, option: int, concurrency: int,
                   events: Sequence[Event], reference: Sequence[np.ndarray],
                   cfg: StudyConfig, weights: Path | None, repeats: int, phase: str,
                   records: list[Record], bar: tqdm) -> ScanPoint:
    """``repeats`` passes over the events with ``concurrency`` events in flight."""
    protocol, shm = TRANSPORTS[transport]
    url = endpoint.url(protocol) if option else None
    point = ScanPoint(phase, option, transport, concurrency, endpoint.instances,
                      endpoint.batching)
    feats = [ev.features for ev in events]
    clock = _Clock(endpoint if option else None)
    with contextlib.ExitStack() as stack:
        runner = stack.enter_context(make_runner(option, url, protocol, shm,
                                                 weights_dir=weights, concurrency=concurrency))
        stats = (stack.enter_context(Transport(ClientConfig(url=url, protocol=protocol)))
                 if option else None)
        warm = max(cfg.warmup, concurrency)
        runner.run_many((feats * warm)[:warm])
        for rep in range(repeats):
            before = stats.statistics() if stats is not None else {}
            t0 = clock.now()
            results = runner.run_many(feats)
            t1 = clock.now()
            if stats is not None:
                add_delta(point.stats, before, stats.statistics())
            point.wall_s += t1[0] - t0[0]
            point.cpu_client_s += t1[1] - t0[1]
            point.cpu_server_s += (t1[2] - t0[2]) if option else 0.0
            for ev, ref, (labels, timing) in zip(events, reference, results, strict=True):
                point.events += 1
                point.latencies.append(timing.total_ms)
                point.mismatched += int(not np.array_equal(labels, ref))
                records.append(Record(phase, str(option), transport, concurrency,
                                      endpoint.instances, endpoint.batching, rep, ev.name,
                                      ev.num_hits, timing.total_ms, dict(timing.stages_ms),
                                      timing.request_ms, len(timing.requests)))
            bar.update(len(events))
    return point


def run_perf(endpoint: Endpoint, events: Sequence[Event], cfg: StudyConfig,
             scratch: Path) -> PerfRun:
    """perf_analyzer against the ``exatrkx`` ensemble and ``exatrkx_pipeline`` (gRPC)."""
    from exatrkx.perf import PerfAnalyzerError, export_perf_data, find_perf_analyzer
    from exatrkx.perf import run_perf_analyzer as run_tool

    tool, reason = find_perf_analyzer()
    if tool is None:
        return PerfRun(False, reason)
    data = export_perf_data(events, scratch / "perf_data.json")
    result = PerfRun(True)
    models = [m for o, m in zip((4, 5), PERF_MODELS, strict=True) if o in cfg.timed_options]
    for model in models:
        try:
            result.rows += run_tool(model, endpoint.grpc_url, data, "grpc",
                                    cfg.perf_concurrency,
                                    measurement_interval_ms=cfg.perf_interval_ms,
                                    stability_percentage=1000.0, max_trials=4,
                                    timeout=180.0, tool=tool)
        except PerfAnalyzerError as exc:
            result.errors[model] = str(exc).splitlines()[0]
    return result


# ---------------------------------------------------------------------------- the study

def server_variants(cfg: StudyConfig) -> list[tuple[int, bool]]:
    """``(instances, dynamic batching)`` settings of the server scan; ``(1, False)`` first."""
    variants = [(1, False)] + [(i, False) for i in cfg.instances if i != 1]
    if cfg.batching_scan:
        variants.append((1, True))
    return variants


def run_study(cfg: StudyConfig, echo: Callable[[str], None] | None = None) -> StudyResult:
    """Run every phase of the study (see the module docstring).

    Args:
        cfg: what to measure.
        echo: where short notes go (stderr by default).

    Raises:
        InputError: bad events or weights; RemoteError: the given server is unusable;
        ServerError: the embedded server did not start.
    """
    echo_line = echo or (lambda line: print(line, file=sys.stderr))
    t_start = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    tune_allocator()  # as the CLI and the served models do
    result = StudyResult(cfg, machine_cores=_cores())
    events, result.origin = load_events(cfg.events, cfg.n_events, cfg.seed)
    result.event_hits = [ev.num_hits for ev in events]
    with contextlib.ExitStack() as outer:
        interrupted = outer.enter_context(signals_as_interrupt())

        def note(line: str) -> None:  # every phase starts with a note: stop there if signalled
            interrupted()
            echo_line(line)

        scratch = Path(outer.enter_context(tempfile.TemporaryDirectory(prefix="exatrkx-study-")))
        weights = weights_or_random(cfg.weights, scratch, note)
        result.weights = (str(cfg.weights) if cfg.weights is not None
                          else "shipped trained weights" if has_shipped_weights()
                          else "random-init nets (no trained weights shipped; k=16, r=0.05)")
        note(f"study: {len(events)} events from {result.origin}")
        reference = reference_labels(events, weights, cfg.warmup)
        with contextlib.ExitStack() as stack:
            if cfg.embedded:
                note("study: starting the embedded Triton server")
                endpoint = stack.enter_context(embedded_server(weights, scratch, 1, False,
                                                               cfg.threads))
                result.server = "embedded (package launcher, free ports)"
            else:
                endpoint = _external(cfg)
                result.server = f"external: gRPC {endpoint.grpc_url}, HTTP {endpoint.http_url}"
                result.notes.append("instance and dynamic-batching scans need the embedded "
                                    "server (--url given): only the server as configured "
                                    "was timed")
            with _prometheus(endpoint, result):
                for transport in cfg.protocols:
                    result.main[transport] = run_main(endpoint, transport, events, reference,
                                                      cfg, weights, result.records)
                _scans(result, endpoint, events, reference, weights, 1, False)
            if cfg.network_delays:
                from exatrkx.study.network import run_network_scan

                note("study: network scan through the loopback delay proxy")
                result.network = run_network_scan(
                    endpoint.grpc_url, [ev.features for ev in events], reference,
                    cfg.network_delays, cfg.network_bandwidths,
                    options=[o for o in (3, 4, 5) if o in cfg.timed_options] or (3, 4, 5),
                    in_flight=max(cfg.concurrency), warmup=cfg.warmup, weights=weights)
            if cfg.perf_analyzer:
                note("study: perf_analyzer")
                result.perf = run_perf(endpoint, events, cfg, scratch)
            else:
                result.perf = PerfRun(False, "perf_analyzer skipped (--no-perf-analyzer)")
        # the main server is stopped before a scan server starts (they would share the cores)
        for instances, batching in server_variants(cfg)[1:] if cfg.embedded else []:
            note(f"study: server with {instances} instance(s) per model, dynamic batching "
                 f"{'on' if batching else 'off'}")
            with embedded_server(weights, scratch, instances, batching, cfg.threads) as ep:
                _scans(result, ep, events, reference, weights, instances, batching)
        if cfg.servers and cfg.embedded:
            from exatrkx.study.scaleout import run_servers_scan

            note(f"study: multi-server scan ({','.join(map(str, cfg.servers))} servers)")
            result.servers = run_servers_scan(
                weights, scratch, [ev.features for ev in events], reference, cfg.servers,
                sorted({1, *cfg.concurrency}),
                options=[o for o in (4, 5) if o in cfg.timed_options] or (4, 5),
                threads=cfg.threads, warmup=cfg.warmup)
        elif cfg.servers:
            result.notes.append("the multi-server scan needs the embedded server (--url "
                                "given): not run")
        interrupted()
    result.wall_s = time.perf_counter() - t_start
    return result


def _scans(result: StudyResult, endpoint: Endpoint, events: Sequence[Event],
           reference: Sequence[np.ndarray], weights: Path | None, instances: int,
           batching: bool) -> None:
    """The concurrency scan (main server only) and the server-scan points of a setting."""
    cfg = result.config
    transport = cfg.protocols[0]
    main_server = (instances, batching) == (1, False)
    points: list[tuple[str, int, int]] = []
    if main_server:
        points += [("concurrency", o, c) for c in cfg.concurrency
                   for o in SCAN_OPTIONS if o in cfg.timed_options]
    levels = sorted({1, max(cfg.concurrency)})
    points += [("server", o, c) for o in SERVER_SCAN_OPTIONS if o in cfg.timed_options
               for c in levels]
    repeats = {"concurrency": cfg.repeats, "server": 1}
    total = sum(repeats[p] * len(events) for p, _, _ in points)
    with _bar(cfg, total, f"scan i{instances}{' batching' if batching else ''}") as bar:
        for phase, option, conc in points:
            point = run_throughput(endpoint, transport, option, conc, events, reference, cfg,
                                   weights, repeats[phase], phase, result.records, bar)
            (result.scan if phase == "concurrency" else result.server_scan).append(point)


@contextlib.contextmanager
def _prometheus(endpoint: Endpoint, result: StudyResult) -> Iterator[None]:
    """Triton's metrics over the block: per-model usage and sampled gauges."""
    from exatrkx.prom import GaugeSampler, model_usage, scrape

    if endpoint.metrics_url is None:
        yield
        return
    try:
        before = scrape(endpoint.metrics_url)
    except (OSError, ValueError) as exc:
        result.notes.append(f"Prometheus metrics unreadable ({exc}); no utilisation section")
        yield
        return
    t0 = time.perf_counter()
    with GaugeSampler(endpoint.metrics_url, interval_s=1.0) as sampler:
        yield
    try:
        after = scrape(endpoint.metrics_url)
    except (OSError, ValueError):
        return
    wall = time.perf_counter() - t0
    result.prometheus = {"wall_s": wall, "gauges": sampler.summary(),
                         "models": {m: u.to_dict()
                                    for m, u in model_usage(before, after, wall).items()}}


def _external(cfg: StudyConfig) -> Endpoint:
    from exatrkx.client import RemoteError

    grpc_url = ClientConfig(url=cfg.url).address
    http_url = (ClientConfig(url=cfg.http_url, protocol="http").address if cfg.http_url
                else f"{grpc_url.rsplit(':', 1)[0]}:8000")
    with Transport(ClientConfig(url=grpc_url)) as probe:
        if not probe.is_ready():
            raise RemoteError(f"no ready Triton server at {grpc_url} (gRPC)")
    return Endpoint(grpc_url, http_url)


def _cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def finite(values: Sequence[float]) -> list[float]:
    """The finite values."""
    return [v for v in values if math.isfinite(v)]
