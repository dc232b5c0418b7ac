"""The study's measurements, one phase after the other, on one embedded (or given) server.

1. reference: option 0 labels of every event (and the first warm-up);
2. main run, per transport: every option and floor model over every event, ``repeats``
   passes, interleaved per event (each event goes through every option and floor before the
   next one starts, the order rotating); Triton's statistics are read around each call, so
   the server-side figures of an option are its own;
3. throughput scan (headline transport): options 0, 4, 5 with 1..N events in flight on the
   main server, then on a freshly started server per other setting (model instances x
   dynamic batching; embedded server only), the points of a setting interleaved per pass;
4. network scan (``network_delays`` given) through the delay proxy;
5. perf_analyzer against the whole-event models (main server), then the chain phase
   (``chain_events`` given): our finder through options 0, 4, 5 inside ACTS against ACTS'
   CKF, on the main server (:mod:`exatrkx.study.chain`);
6. multi-server scan (``servers`` given, embedded server only): options 4 and 5 over 1..N
   servers balanced by the client, against one server with N instances.

The main server has the repository's default setting (the best served setting of the scan on
the development machine), unless ``main_instances`` / ``main_batching`` say otherwise.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from exatrkx.core.allocator import tune_allocator
from exatrkx.io import Event
from exatrkx.serve.repository import BATCHED_MODELS, DEFAULT_BATCHING, DEFAULT_INSTANCES
from exatrkx.study.chain import run_chain_phase
from exatrkx.study.config import (
    NETWORK_OPTIONS,
    SCALEOUT_OPTIONS,
    SCAN_OPTIONS,
    StudyConfig,
)
from exatrkx.study.interrupt import signals_as_interrupt
from exatrkx.study.measure import has_shipped_weights, load_events, weights_or_random
from exatrkx.study.network import run_network_scan
from exatrkx.study.phases import (
    Reference,
    reference_labels,
    run_main,
    run_perf,
    run_scan,
)
from exatrkx.study.results import Endpoint, PerfRun, ScanPoint, StudyResult
from exatrkx.study.sampling import prometheus_block
from exatrkx.study.scaleout import run_servers_scan
from exatrkx.study.servers import embedded_server, external_endpoint, machine_cores
from exatrkx.study.simulation import check_simulation


def main_setting(cfg: StudyConfig) -> tuple[int, bool]:
    """``(instances, dynamic batching)`` of the main server."""
    return (cfg.main_instances if cfg.main_instances is not None else DEFAULT_INSTANCES,
            cfg.main_batching if cfg.main_batching is not None else DEFAULT_BATCHING)


def server_variants(cfg: StudyConfig) -> list[tuple[int, bool]]:
    """``(instances, dynamic batching)`` settings of the throughput scan; the main server's
    first."""
    main = main_setting(cfg)
    batching = (main[1], not main[1]) if cfg.batching_scan else (main[1],)
    variants = [main]
    for instances in [main[0], *sorted(set(cfg.instances) - {main[0]})]:
        for batch in batching:
            if (instances, batch) not in variants:
                variants.append((instances, batch))
    return variants


def run_study(cfg: StudyConfig, echo: Callable[[str], None] | None = None) -> StudyResult:
    """Run every phase of the study (see the module docstring).

    Args:
        cfg: what to measure.
        echo: where short notes go (stderr by default).

    Raises:
        InputError: bad events or weights; ServerUnavailable: the given server is unusable;
        ServerError: the embedded server did not start.
    """
    echo_line = echo or (lambda line: print(line, file=sys.stderr))
    t_start = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    tune_allocator()  # as the CLI and the served models do
    result = StudyResult(cfg, main_setting=main_setting(cfg), machine_cores=machine_cores(),
                         batched_models=BATCHED_MODELS)
    events, result.origin = load_events(cfg.events, cfg.n_events, cfg.seed)
    real_events = not any(ev.has_truth for ev in events)  # the shared sample has no truth
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
        if cfg.check_simulation and real_events:
            note(f"study: {len(events)} simulated HNL events against the timed ones")
            result.simulation = check_simulation(events, result.origin, cfg.seed, weights)
        with contextlib.ExitStack() as stack:
            if cfg.embedded:
                instances, batching = result.main_setting
                note(f"study: starting the embedded Triton server ({instances} instance(s), "
                     f"dynamic batching {'on' if batching else 'off'})")
                endpoint = stack.enter_context(embedded_server(weights, scratch, instances,
                                                               batching, cfg.threads,
                                                               floors=True))
                result.server = "embedded (package launcher, free ports)"
                result.device = endpoint.device
            else:
                endpoint = external_endpoint(cfg)
                result.server = f"external: gRPC {endpoint.grpc_url}, HTTP {endpoint.http_url}"
                result.device = "unknown (a given server)"
                result.notes.append("instance and dynamic-batching scans need the embedded "
                                    "server (--url given): only the server as configured "
                                    "was timed")
            with prometheus_block(endpoint, result):
                for transport in cfg.protocols:
                    note(f"study: main run over {transport}")
                    result.main[transport] = run_main(endpoint, transport, events, reference,
                                                      cfg, weights, result.records)
                note("study: throughput scan on the main server")
                result.scan = _scan(result, endpoint, events, reference, weights)
                result.server_scan += result.scan
            if cfg.network_delays:
                note("study: network scan through the loopback delay proxy")
                result.network = run_network_scan(
                    endpoint.grpc_url, [ev.features for ev in events], reference.labels,
                    cfg.network_delays, cfg.network_bandwidths,
                    options=[o for o in NETWORK_OPTIONS if o in cfg.timed_options]
                    or NETWORK_OPTIONS,
                    in_flight=max(cfg.concurrency), warmup=cfg.warmup, weights=weights)
            if cfg.perf_analyzer:
                note("study: perf_analyzer")
                result.perf = run_perf(endpoint, events, cfg, scratch)
            else:
                result.perf = PerfRun(False, "perf_analyzer skipped (--no-perf-analyzer)")
            if cfg.chain_events is not None:
                note(f"study: the ACTS chain on {cfg.chain_events} (options 0, 4, 5 and the "
                     "CKF)")
                result.chain = run_chain_phase(cfg.chain_events, endpoint, weights, cfg.threads)
        # the main server is stopped before a scan server starts (they would share the cores)
        for instances, batching in server_variants(cfg)[1:] if cfg.embedded else []:
            note(f"study: throughput scan, {instances} instance(s) per model, dynamic "
                 f"batching {'on' if batching else 'off'}")
            with embedded_server(weights, scratch, instances, batching, cfg.threads) as ep:
                result.server_scan += _scan(result, ep, events, reference, weights)
        if cfg.servers and cfg.embedded:
            note(f"study: multi-server scan ({','.join(map(str, cfg.servers))} servers)")
            result.servers = run_servers_scan(
                weights, scratch, [ev.features for ev in events], reference.labels,
                cfg.servers, sorted({1, *cfg.concurrency}),
                options=[o for o in SCALEOUT_OPTIONS if o in cfg.timed_options]
                or SCALEOUT_OPTIONS,
                threads=cfg.threads, warmup=cfg.warmup)
        elif cfg.servers:
            result.notes.append("the multi-server scan needs the embedded server (--url "
                                "given): not run")
        interrupted()
    result.wall_s = time.perf_counter() - t_start
    return result


def _scan(result: StudyResult, endpoint: Endpoint, events: Sequence[Event],
          reference: Reference, weights: Path | None) -> list[ScanPoint]:
    """The throughput scan's points on one server setting (options 0, 4, 5 as timed)."""
    cfg = result.config
    options = [o for o in SCAN_OPTIONS if o in cfg.timed_options]
    return run_scan(endpoint, cfg.protocols[0], options, sorted(set(cfg.concurrency)), events,
                    reference, cfg, weights, result.records)
