"""Batching whole events: the measurements behind the repository's batching defaults.

1. ``forward`` (in process, no server): all events through ``Pipeline.run_tensors`` in groups
   of at most B hits (B = one event at a time, 2048, 4096, ... every event at once), the
   budgets interleaved pass by pass; seconds per pass over the events (median of passes).
   Chooses ``DEFAULT_FORWARD_HITS["cpu"]``: beyond a few thousand hits a joined graph falls
   out of the caches of this CPU and runs slower per event.
2. ``served`` (one embedded server per setting, started one after the other): options 4 and
   5 at 1, 8 and 16 events in flight, with option 0 measured beside them on each setting
   (the study's scan: points interleaved per pass); events/s (median of passes), the ratio
   to option 0 at the same level in the same block, and the median latency at 1 in flight
   (what a queue delay costs a lone event). Settings: batching off, on with queue delays
   0 / 500 / 2000 us, on with preferred batch sizes 4, 8, and the instance counts given
   (``--settings``; ``--max-hits 200000 --events <pileup 200 events>`` for pileup).

Prints the machine's load before and after each part; compare settings only within a run.

    .venv/bin/python benchmarks/bench_batching.py [--events DIR] [--n 100] [--parts forward,served]
        [--passes 3] [--instances 1,2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from exatrkx.contract import DEFAULT_MAX_HITS, Option
from exatrkx.core.allocator import tune_allocator
from exatrkx.core.batch import sub_batches
from exatrkx.core.pipeline import load_pipeline
from exatrkx.io import read_event
from exatrkx.io.readers import event_sources
from exatrkx.io.shared import hnl_events_dir
from exatrkx.study.config import StudyConfig
from exatrkx.study.phases import reference_labels, run_scan
from exatrkx.study.servers import embedded_server

#: Forward-pass budgets in hits (1: one event at a time; a huge one: every event at once).
BUDGETS = (1, 2048, 4096, 8192, 16384, 1 << 40)
#: Server settings of the served part: (name, instances, batching, overrides).
SETTINGS: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "off": ("batching off", False, {}),
    "on": ("batching on, delay 0", True, {"max_queue_delay_us": 0}),
    "delay500": ("batching on, delay 500 us", True, {"max_queue_delay_us": 500}),
    "delay2000": ("batching on, delay 2000 us", True, {"max_queue_delay_us": 2000}),
    "preferred": ("batching on, delay 0, preferred 4,8", True,
                  {"max_queue_delay_us": 0, "preferred_batch_sizes": (4, 8)}),
}


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def forward(events: list[torch.Tensor], passes: int) -> None:
    pipe = load_pipeline()
    sizes = [int(x.shape[0]) for x in events]
    times: dict[int, list[float]] = {b: [] for b in BUDGETS}
    pipe.run_tensors(events[:4])  # warm
    for rep in range(passes):
        for budget in BUDGETS if rep % 2 == 0 else BUDGETS[::-1]:
            t0 = time.perf_counter()
            for group in sub_batches(sizes, budget):
                pipe.run_tensors([events[i] for i in group])
            times[budget].append(time.perf_counter() - t0)
    base = statistics.median(times[1])
    print(f"\nforward pass: {len(events)} events, {passes} passes ({load()})")
    print(f"{'hits per pass at most':>24}{'groups':>8}{'s per pass':>12}{'vs one at a time':>18}")
    for budget in BUDGETS:
        med = statistics.median(times[budget])
        name = "one event" if budget == 1 else "every event" if budget == BUDGETS[-1] \
            else str(budget)
        print(f"{name:>24}{len(sub_batches(sizes, budget)):>8}{med:>12.3f}{med / base:>18.2f}")


def served(events: list[Any], passes: int, instances: list[int], levels: list[int],
           settings: list[str], max_hits: int) -> None:
    cfg = StudyConfig(repeats=passes, warmup=3, progress=False)
    reference = reference_labels(events, None, 3)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-batching-") as tmp:
        for inst in instances:
            for name, batching, overrides in (SETTINGS[k] for k in settings):
                if inst > 1 and overrides.get("max_queue_delay_us", 0) > 0:
                    continue  # the delays are compared on one instance
                print(f"[{inst} instance(s), {name}: {load()}]", file=sys.stderr)
                with embedded_server(None, Path(tmp), inst, batching, 1, max_hits=max_hits,
                                     **overrides) as ep:
                    points = run_scan(ep, "grpc", [Option(0), Option(4), Option(5)], levels,
                                      events, reference, cfg, None, [])
                local = {p.concurrency: p.throughput_eps for p in points if p.option == 0}
                for p in points:
                    if p.option != 0:
                        rows.append((inst, name, int(p.option), p.concurrency,
                                     p.throughput_eps, p.throughput_eps / local[p.concurrency],
                                     p.timed.latency_ms(50), p.mismatched))
    print(f"\nserved: {len(events)} events, {passes} passes per point ({load()})")
    print(f"{'inst.':>5} {'setting':<38}{'S':>3}{'in flight':>10}{'events/s':>10}"
          f"{'/ S0':>7}{'p50 ms':>9}  labels")
    for inst, name, opt, conc, eps, ratio, p50, bad in rows:
        print(f"{inst:>5} {name:<38}{opt:>3}{conc:>10}{eps:>10.1f}{ratio:>7.2f}{p50:>9.1f}  "
              f"{'same' if bad == 0 else f'{bad} DIFFERENT'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=None, help="default: shared HNL")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--parts", default="forward,served")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--instances", default="1")
    parser.add_argument("--levels", default="1,8,16")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"server settings of the served part ({', '.join(SETTINGS)})")
    parser.add_argument("--max-hits", type=int, default=DEFAULT_MAX_HITS,
                        help="the servers' limit of hits per event (pileup 200: 200000)")
    args = parser.parse_args(argv)
    source = args.events or hnl_events_dir()
    if source is None:
        print("no events: pass --events (the shared HNL events are absent)", file=sys.stderr)
        return 2
    events = [read_event(s) for s in event_sources(source)[:args.n]]
    torch.set_num_threads(1)
    tune_allocator()
    parts = args.parts.split(",")
    if "forward" in parts:
        forward([torch.from_numpy(ev.features) for ev in events], args.passes)
    if "served" in parts:
        served(events, args.passes, [int(i) for i in args.instances.split(",")],
               [int(c) for c in args.levels.split(",")], args.settings.split(","),
               args.max_hits)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
