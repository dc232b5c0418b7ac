"""The study's timed phases: reference labels, the main run (options interleaved per event),
the throughput scan (points interleaved per pass), perf_analyzer."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from exatrkx.contract import FLOOR_MODELS, OPTIONS, WHOLE_EVENT_OPTIONS, Option, touch_sizes
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


@dataclass(frozen=True)
class Reference:
    """Option 0's answer for every event: the labels every option must give, and the sizes
    the touch floors write (``SIZES``)."""

    labels: list[np.ndarray]
    sizes: list[np.ndarray]


def reference_labels(events: Sequence[Event], weights: Path | None,
                     warmup: int) -> Reference:
    """Option 0 labels and sizes of every event (after a warm-up)."""
    with make_runner(Option.IN_PROCESS, weights_dir=weights) as runner:
        for ev in events[:warmup]:
            runner.run(ev.features)
        results = [runner.run(ev.features) for ev in events]
        width = int(runner.config.embed.out_dim) if runner.config is not None else 8
    return Reference([r.labels for r in results],
                     [touch_sizes(width, r.edges.get("build", 0), r.edges.get("filter", 0))
                      for r in results])


def run_main(endpoint: Endpoint, transport: str, events: Sequence[Event],
             reference: Reference, cfg: StudyConfig, weights: Path | None,
             records: list[Record]) -> dict[str, OptionRun]:
    """Every option and floor over every event on one transport, ``cfg.repeats`` passes,
    interleaved per event: each event runs through every option and floor model, in an
    order that rotates from event to event, before the next event starts; so each event's
    figures are taken at nearly the same moment, and options pair per event.

    Triton's statistics and the CPU clocks are read around each call, so each option's
    server-side figures are its own (options 1, 3 and 4 share the stage models).

    Returns:
        ``{"0": OptionRun, ..., "floor_hop": ..., "floor_touch_ensemble5": ...}``.
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
        for ev, sizes in zip(events[:cfg.warmup], reference.sizes, strict=False):
            for runner in runners.values():
                runner.run(ev.features)
            floor_times(floor, ev.features, sizes)
        bar = stack.enter_context(progress_bar(cfg, cfg.repeats * len(events),
                                               f"main {transport}"))
        blocks: list[Option | str] = [*options, *FLOOR_MODELS]
        before = stats.statistics()
        for rep in range(cfg.repeats):
            for i, ev in enumerate(events):
                shift = (i + rep) % len(blocks)
                for block in blocks[shift:] + blocks[:shift]:
                    t0 = clock.now()
                    if isinstance(block, str):
                        key = FLOOR_ROWS[block]
                        ms = floor_times(floor, ev.features, reference.sizes[i],
                                         keys=[block])[block]
                        runs[key].add(i, ms)
                        runs[key].request_ms += ms
                        records.append(Record("main", key, transport, 1, endpoint.instances,
                                              endpoint.batching, rep, ev.name, ev.num_hits, ms,
                                              {}, ms, 1))
                    else:
                        key = str(int(block))
                        _option_event(runners[block], block, i, ev, reference.labels[i],
                                      transport, endpoint, rep, runs[key], records)
                    t1 = clock.now()
                    after = stats.statistics()
                    add_delta(runs[key].stats, before, after)
                    before = after
                    runs[key].cpu_client_s += t1[1] - t0[1]
                    runs[key].cpu_server_s += t1[2] - t0[2]
                bar.update()
    return runs


def _option_event(runner: Runner, option: Option, index: int, ev: Event, ref: np.ndarray,
                  transport: str, endpoint: Endpoint, rep: int, run: OptionRun,
                  records: list[Record]) -> None:
    result = runner.run(ev.features)
    timing = result.timing
    if not np.array_equal(result.labels, ref):
        run.mismatched.add(ev.name)
    run.add(index, timing.total_ms)
    run.request_ms += timing.request_ms
    for name, ms in timing.stages_ms.items():
        run.stage_sums[name] = run.stage_sums.get(name, 0.0) + ms
    records.append(Record("main", str(int(option)), transport, 1, endpoint.instances,
                          endpoint.batching, rep, ev.name, ev.num_hits, timing.total_ms,
                          dict(timing.stages_ms), timing.request_ms, len(timing.requests)))


def run_scan(endpoint: Endpoint, transport: str, options: Sequence[Option],
             levels: Sequence[int], events: Sequence[Event], reference: Reference,
             cfg: StudyConfig, weights: Path | None, records: list[Record],
             phase: str = "scan") -> list[ScanPoint]:
    """The throughput scan on one server setting: every option at every number of events
    in flight, ``cfg.repeats`` passes over the events per point, the points interleaved
    (each pass runs every point once, in an order that rotates between passes).

    Option 0 runs here too (in this process, the server idle): it is the reference the
    served points are held against, measured beside them.
    """
    protocol, shm = TRANSPORTS[transport]
    feats = [ev.features for ev in events]
    pairs = [(o, c) for c in levels for o in options]
    points = {(o, c): ScanPoint(phase, o, transport, c, endpoint.instances, endpoint.batching)
              for o, c in pairs}
    remote = any(OPTIONS[o].remote for o in options)
    clock = _Clock(endpoint if remote else None)
    desc = f"scan {endpoint.instances} inst. batching {'on' if endpoint.batching else 'off'}"
    with contextlib.ExitStack() as stack:
        client = endpoint.client(protocol)
        runners = {}
        for o, c in pairs:
            url = endpoint.url(protocol) if OPTIONS[o].remote else None
            runners[(o, c)] = stack.enter_context(make_runner(
                o, url, protocol, shm, weights_dir=weights, concurrency=c,
                **(client if OPTIONS[o].remote else {})))
            warm = max(cfg.warmup, c)
            runners[(o, c)].run_many((feats * warm)[:warm])
        stats = stack.enter_context(Transport(ClientConfig(url=endpoint.url(protocol),
                                                           protocol=protocol, **client)))
        bar = stack.enter_context(progress_bar(cfg, cfg.repeats * len(pairs) * len(events),
                                               desc))
        for rep in range(cfg.repeats):
            shift = rep % len(pairs)
            for o, c in pairs[shift:] + pairs[:shift]:
                point = points[(o, c)]
                before = stats.statistics() if OPTIONS[o].remote else {}
                t0 = clock.now()
                results = runners[(o, c)].run_many(feats)
                t1 = clock.now()
                if OPTIONS[o].remote:
                    add_delta(point.stats, before, stats.statistics())
                    point.cpu_server_s += t1[2] - t0[2]
                point.timed.wall_s += t1[0] - t0[0]
                point.passes_eps.append(len(feats) / max(t1[0] - t0[0], 1e-9))
                point.cpu_client_s += t1[1] - t0[1]
                for ev, ref, result in zip(events, reference.labels, results, strict=True):
                    timing = result.timing
                    point.timed.add(timing.total_ms)
                    point.mismatched += int(not np.array_equal(result.labels, ref))
                    records.append(Record(phase, str(int(o)), transport, c, endpoint.instances,
                                          endpoint.batching, rep, ev.name, ev.num_hits,
                                          timing.total_ms, dict(timing.stages_ms),
                                          timing.request_ms, len(timing.requests)))
                bar.update(len(events))
    return [points[p] for p in pairs]


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
