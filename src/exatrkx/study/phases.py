"""The study's timed phases: reference labels, the main run, throughput points, perf_analyzer."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from exatrkx.contract import OPTIONS, WHOLE_EVENT_OPTIONS, Option
from exatrkx.io import Event
from exatrkx.service.remote import floor_times
from exatrkx.service.runner import Runner, make_runner
from exatrkx.service.stats import add_delta
from exatrkx.service.transport import ClientConfig, Transport
from exatrkx.study.config import TRANSPORTS, StudyConfig
from exatrkx.study.perf import (
    PerfAnalyzerError,
    export_perf_data,
    find_perf_analyzer,
    perf_tls_args,
)
from exatrkx.study.perf import run_perf_analyzer as run_tool
from exatrkx.study.results import (
    FLOOR_ROWS,
    Endpoint,
    OptionRun,
    PerfRun,
    Record,
    ScanPoint,
)


class _Clock:
    """Client and server CPU seconds and wall time over a block."""

    def __init__(self, endpoint: Endpoint | None) -> None:
        self.endpoint = endpoint

    def now(self) -> tuple[float, float, float]:
        server = self.endpoint.cpu_s() if self.endpoint is not None else 0.0
        return time.perf_counter(), time.process_time(), server


def progress_bar(cfg: StudyConfig, total: int, desc: str) -> tqdm:
    """A progress bar on stderr (silent without ``cfg.progress``)."""
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not cfg.progress,
                mininterval=1.0, dynamic_ncols=True, leave=False)


def reference_labels(events: Sequence[Event], weights: Path | None,
                     warmup: int) -> list[np.ndarray]:
    """Option 0 labels of every event (after a warm-up)."""
    with make_runner(Option.IN_PROCESS, weights_dir=weights) as runner:
        for ev in events[:warmup]:
            runner.run(ev.features)
        return [runner.run(ev.features).labels for ev in events]


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
    runs = ({str(int(o)): OptionRun() for o in options}
            | {k: OptionRun() for k in FLOOR_ROWS.values()})
    clock = _Clock(endpoint)
    with contextlib.ExitStack() as stack:
        client = endpoint.client(protocol)
        runners = {o: stack.enter_context(make_runner(o, url if OPTIONS[o].remote else None,
                                                      protocol, shm, weights_dir=weights,
                                                      **client))
                   for o in options}
        floor = stack.enter_context(Transport(ClientConfig(url=url, protocol=protocol,
                                                           shared_memory=shm, **client)))
        stats = stack.enter_context(Transport(ClientConfig(url=url, protocol=protocol,
                                                           **client)))
        for ev in events[:cfg.warmup]:
            for runner in runners.values():
                runner.run(ev.features)
            floor_times(floor, ev.features)
        bar = stack.enter_context(progress_bar(cfg, cfg.repeats * (len(options) + 1) * len(events),
                                       f"main {transport}"))
        blocks: list[Option | None] = [*options, None]
        for rep in range(cfg.repeats):
            shift = rep % len(blocks)
            for block in blocks[shift:] + blocks[:shift]:
                before = stats.statistics()
                t0 = clock.now()
                if block is None:
                    _floor_block(floor, events, transport, endpoint, rep, runs, records, bar)
                else:
                    _option_block(runners[block], block, events, reference, transport,
                                  endpoint, rep, runs[str(int(block))], records, bar)
                t1 = clock.now()
                keys = FLOOR_ROWS.values() if block is None else [str(int(block))]
                for key in keys:
                    add_delta(runs[key].stats, before, stats.statistics())
                    runs[key].cpu_client_s += t1[1] - t0[1]
                    runs[key].cpu_server_s += t1[2] - t0[2]
    return runs


def _option_block(runner: Runner, option: Option, events: Sequence[Event],
                  reference: Sequence[np.ndarray], transport: str, endpoint: Endpoint,
                  rep: int, run: OptionRun, records: list[Record], bar: tqdm) -> None:
    for ev, ref in zip(events, reference, strict=True):
        result = runner.run(ev.features)
        timing = result.timing
        if not np.array_equal(result.labels, ref):
            run.mismatched.add(ev.name)
        run.timed.add(timing.total_ms)
        run.request_ms += timing.request_ms
        for name, ms in timing.stages_ms.items():
            run.stage_sums[name] = run.stage_sums.get(name, 0.0) + ms
        records.append(Record("main", str(int(option)), transport, 1, endpoint.instances,
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
            run.timed.add(ms)
            run.request_ms += ms
            records.append(Record("main", FLOOR_ROWS[key], transport, 1, endpoint.instances,
                                  endpoint.batching, rep, ev.name, ev.num_hits, ms, {}, ms, 1))
        bar.update()


def run_throughput(endpoint: Endpoint, transport: str, option: Option, concurrency: int,
                   events: Sequence[Event], reference: Sequence[np.ndarray],
                   cfg: StudyConfig, weights: Path | None, repeats: int, phase: str,
                   records: list[Record], bar: tqdm) -> ScanPoint:
    """``repeats`` passes over the events with ``concurrency`` events in flight."""
    protocol, shm = TRANSPORTS[transport]
    remote = OPTIONS[option].remote
    url = endpoint.url(protocol) if remote else None
    point = ScanPoint(phase, option, transport, concurrency, endpoint.instances,
                      endpoint.batching)
    feats = [ev.features for ev in events]
    clock = _Clock(endpoint if remote else None)
    with contextlib.ExitStack() as stack:
        client = endpoint.client(protocol)
        runner = stack.enter_context(make_runner(option, url, protocol, shm,
                                                 weights_dir=weights, concurrency=concurrency,
                                                 **client))
        stats = (stack.enter_context(Transport(ClientConfig(url=url, protocol=protocol,
                                                            **client)))
                 if remote else None)
        warm = max(cfg.warmup, concurrency)
        runner.run_many((feats * warm)[:warm])
        for rep in range(repeats):
            before = stats.statistics() if stats is not None else {}
            t0 = clock.now()
            results = runner.run_many(feats)
            t1 = clock.now()
            if stats is not None:
                add_delta(point.stats, before, stats.statistics())
            point.timed.wall_s += t1[0] - t0[0]
            point.cpu_client_s += t1[1] - t0[1]
            point.cpu_server_s += (t1[2] - t0[2]) if remote else 0.0
            for ev, ref, result in zip(events, reference, results, strict=True):
                timing = result.timing
                point.timed.add(timing.total_ms)
                point.mismatched += int(not np.array_equal(result.labels, ref))
                records.append(Record(phase, str(int(option)), transport, concurrency,
                                      endpoint.instances, endpoint.batching, rep, ev.name,
                                      ev.num_hits, timing.total_ms, dict(timing.stages_ms),
                                      timing.request_ms, len(timing.requests)))
            bar.update(len(events))
    return point


def run_perf(endpoint: Endpoint, events: Sequence[Event], cfg: StudyConfig,
             scratch: Path) -> PerfRun:
    """perf_analyzer against the whole-event models (``exatrkx``, ``exatrkx_pipeline``;
    gRPC)."""
    tool, reason = find_perf_analyzer()
    if tool is None:
        return PerfRun(False, reason)
    data = export_perf_data(events, scratch / "perf_data.json")
    result = PerfRun(True)
    models = [OPTIONS[o].whole_event_model for o in WHOLE_EVENT_OPTIONS
              if o in cfg.timed_options]
    for model in models:
        assert model is not None
        try:
            result.rows += run_tool(model, endpoint.grpc_url, data, "grpc",
                                    cfg.perf_concurrency,
                                    measurement_interval_ms=cfg.perf_interval_ms,
                                    stability_percentage=1000.0, max_trials=4,
                                    extra=perf_tls_args(endpoint.tls),
                                    timeout=180.0, tool=tool)
        except PerfAnalyzerError as exc:
            result.errors[model] = str(exc).splitlines()[0]
    return result
