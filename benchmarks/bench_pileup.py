"""Pileup scaling of the in-process pipeline (option 0): time per stage, edges per hit after
each stage and peak memory, from events without pileup to 200 pileup interactions.

Each point is a folder of events with one pileup value (``exatrkx simulate --source ttbar
--pileup MU``). Every point runs in a process of its own, so that its peak memory (the
process's maximum resident set, which only grows) is that point's alone. Per point:

- hits per event (mean);
- wall time of each stage and of the event (medians over the events; the nets are
  TorchScript-compiled and run three times on a slice of the first event before timing);
- edges per hit after the build, after the filter and above the GNN cut (sums over sums);
- peak resident memory of the process, and its resident memory before the first event
  (interpreter, torch and the nets), both in MB.

The load of the machine (``os.getloadavg``) is recorded before and after each point.

Usage::

    .venv/bin/python benchmarks/bench_pileup.py --point 0=EVENTS_MU0 --point 50=EVENTS_MU50 \\
        --point 100=EVENTS_MU100 --point 200=EVENTS_MU200 [--weights pu200] [--events 3] \\
        [--threads 2] [--plot docs/pileup/scaling.png] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

STAGES = ("embed", "build", "filter", "gnn", "label")
EDGE_STAGES = ("build", "filter", "gnn")


def rss_mb() -> float:
    """Resident memory of this process now (MB), from ``/proc/self/statm``."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_point(events_dir: Path, weights: str | None, n_events: int,
                  threads: int) -> dict[str, Any]:
    """Time the pipeline on the first ``n_events`` events of ``events_dir`` (this process)."""
    from exatrkx.core.allocator import tune_allocator
    from exatrkx.core.pipeline import load_pipeline
    from exatrkx.io import iter_events

    tune_allocator()  # as the exatrkx command does
    pipe = load_pipeline(weights, num_threads=threads)
    features = []
    for event in iter_events(events_dir):
        features.append(event.features)
        if len(features) == n_events:
            break
    if not features:
        raise SystemExit(f"no events in {events_dir}")
    for _ in range(3):  # compile the nets and let TorchScript's profiling settle, on a slice
        pipe.run(features[0][:5000])
    before = rss_mb()
    totals: list[float] = []
    stages: dict[str, list[float]] = {k: [] for k in STAGES}
    edges = dict.fromkeys(EDGE_STAGES, 0)
    hits = 0
    for f in features:
        t0 = time.perf_counter()
        res = pipe.run(f)
        totals.append((time.perf_counter() - t0) * 1e3)
        for k in STAGES:
            stages[k].append(res.times_ms[k])
        for k in EDGE_STAGES:
            edges[k] += int(res.edges.get(k, 0))
        hits += int(f.shape[0])
    return {"events_dir": str(events_dir), "events": len(features),
            "hits_per_event": hits / len(features),
            "median_ms": float(np.median(totals)),
            "stages_median_ms": {k: float(np.median(v)) for k, v in stages.items()},
            "edges_per_hit": {k: v / max(hits, 1) for k, v in edges.items()},
            "rss_before_mb": before, "peak_rss_mb": peak_rss_mb()}


def run_point(events_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One point in a fresh process (its own peak memory)."""
    cmd = [sys.executable, __file__, "--one", str(events_dir), "--events", str(args.events),
           "--threads", str(args.threads)]
    if args.weights:
        cmd += ["--weights", args.weights]
    load_before = os.getloadavg()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"point {events_dir} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load_before"], result["load_after"] = load_before, os.getloadavg()
    return result


def plot(points: dict[float, dict[str, Any]], path: Path, title: str) -> None:
    """Three panels against pileup: time per stage, edges per hit per stage, memory."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mus = sorted(points)
    fig = Figure(figsize=(13, 4.2))
    FigureCanvasAgg(fig)
    ax_t, ax_e, ax_m = fig.subplots(1, 3)
    for k in STAGES:
        ax_t.plot(mus, [points[m]["stages_median_ms"][k] / 1e3 for m in mus], "o-", label=k)
    ax_t.plot(mus, [points[m]["median_ms"] / 1e3 for m in mus], "k--", label="event")
    ax_t.set_yscale("log")
    ax_t.set_ylabel("median time per event (s)")
    for k in EDGE_STAGES:
        ax_e.plot(mus, [points[m]["edges_per_hit"][k] for m in mus], "o-",
                  label=f"after {k}" if k != "gnn" else "above the GNN cut")
    ax_e.set_ylabel("edges per hit")
    ax_m.plot(mus, [points[m]["peak_rss_mb"] / 1024 for m in mus], "o-", label="peak")
    ax_m.plot(mus, [points[m]["rss_before_mb"] / 1024 for m in mus], "s--",
              label="before the first event")
    ax_m.set_ylabel("resident memory (GB)")
    for ax in (ax_t, ax_e, ax_m):
        ax.set_xlabel("pileup interactions")
        ax.set_xticks(mus)
        ax.set_xticklabels([f"{m:g}\n{points[m]['hits_per_event'] / 1e3:.0f}k hits"
                            for m in mus])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--point", action="append", default=[], metavar="MU=DIR",
                    help="pileup and its events folder; repeat")
    ap.add_argument("--weights", default=None, help="folder or shipped set name")
    ap.add_argument("--events", type=int, default=3, help="events per point")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plot", type=Path, default=None, help="write the figure here")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.one is not None:
        print(json.dumps(measure_point(args.one, args.weights, args.events, args.threads)))
        return 0
    if not args.point:
        ap.error("give at least one --point MU=DIR")
    points: dict[float, dict[str, Any]] = {}
    for spec in args.point:
        mu, _, folder = spec.partition("=")
        if not folder:
            ap.error(f"--point wants MU=DIR, got {spec!r}")
        res = run_point(Path(folder), args)
        points[float(mu)] = res
        st = "  ".join(f"{k} {v / 1e3:.2f}" for k, v in res["stages_median_ms"].items())
        eph = " -> ".join(f"{res['edges_per_hit'][k]:.2f}" for k in EDGE_STAGES)
        print(f"pileup {mu}: {res['hits_per_event']:.0f} hits, median {res['median_ms'] / 1e3:.2f}"
              f" s/event ({st} s) | edges/hit {eph} | peak RSS {res['peak_rss_mb']:.0f} MB "
              f"(before {res['rss_before_mb']:.0f}) | load {res['load_before'][0]:.1f} -> "
              f"{res['load_after'][0]:.1f}", flush=True)
    out = {"weights": args.weights or "default", "threads": args.threads,
           "events_per_point": args.events, "points": {f"{m:g}": points[m] for m in points}}
    if args.plot is not None:
        plot(points, args.plot, f"in-process pipeline, weights {args.weights or 'default'}, "
                                f"{args.threads} threads, {args.events} events per point")
        print(f"wrote {args.plot}")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
