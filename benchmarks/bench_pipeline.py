"""Option 0 (in-process pipeline) timing on the 100 shared real HNL events.

Runs, in one process:

1. our pipeline (shipped weights, ``--weights DIR``, or random init with the default
   config when no weights exist) -- mean and median warm wall time per event, per-stage
   split, edges per hit;
2. the same pipeline with the reference's model sizes, random init (timing only):
   embedding 3 -> 512, 5 x Linear(512, 512) + Tanh -> 8; filter 6 -> 512 with
   4 x (Linear + Tanh + LayerNorm) -> 1; GNN hidden 64, 8 iterations, 3-layer MLPs with
   LayerNorm + ReLU -- and the ratio of the two.

With random weights the filter keeps an arbitrary share of edges, so its cut is set to
keep ``--filter-keep`` (25%, like the reference event: 2334 -> 584) of the build edges on
the first 10 events, and the radius of the reference-size run is set to give the same
edges per hit as ours. Both only make the timing realistic.

Usage::

    .venv/bin/python benchmarks/bench_pipeline.py [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exatrkx.config import EmbedConfig, FilterConfig, GNNConfig, PipelineConfig
from exatrkx.contract import STAGES
from exatrkx.core.allocator import tune_allocator
from exatrkx.core.models import Nets, build_models, load_models
from exatrkx.core.pipeline import pipeline_from_nets
from exatrkx.core.stages.build import build_edges
from exatrkx.core.stages.embed import embed
from exatrkx.core.stages.filter import filter_edges
from exatrkx.errors import InputError
from exatrkx.io import iter_events
from exatrkx.io.shared import hnl_events_dir

REFERENCE = PipelineConfig(
    embed=EmbedConfig(hidden=512, layers=6, out_dim=8, activation="tanh"),
    filter=FilterConfig(hidden=512, layers=4, norm=True, activation="tanh"),
    gnn=GNNConfig(hidden=64, steps=8, mlp_layers=2, activation="relu", edge_norm=True),
    max_neighbours=500,
)


def edges_per_hit(nets: Nets, config: PipelineConfig, events: list[np.ndarray]) -> float:
    n_edges = n_hits = 0
    for f in events:
        e = build_edges(embed(nets.embed, torch.from_numpy(f)), config.radius,
                        config.max_neighbours)
        n_edges += e.shape[1]
        n_hits += f.shape[0]
    return n_edges / max(n_hits, 1)


def match_radius(nets: Nets, config: PipelineConfig, events: list[np.ndarray],
                 target: float) -> PipelineConfig:
    """Bisect the radius so that the build gives ``target`` edges per hit."""
    lo, hi = 0.0, 2.0
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        if edges_per_hit(nets, dataclasses.replace(config, radius=mid), events) < target:
            lo = mid
        else:
            hi = mid
    return dataclasses.replace(config, radius=0.5 * (lo + hi))


def calibrate_filter(nets: Nets, config: PipelineConfig, events: list[np.ndarray],
                     keep: float) -> PipelineConfig:
    """Filter cut that keeps ``keep`` of the build edges (random weights only)."""
    scores = []
    for f in events:
        x = torch.from_numpy(f)
        e = build_edges(embed(nets.embed, x), config.radius, config.max_neighbours)
        scores.append(filter_edges(nets.filter, x, e, 0.0)[1])
    cut = float(torch.quantile(torch.cat(scores).double(), 1.0 - keep))
    return dataclasses.replace(config, filter_cut=cut)


def time_pipeline(nets: Nets, config: PipelineConfig, events: list[np.ndarray],
                  threads: int, warmup: int = 5) -> dict[str, Any]:
    pipe = pipeline_from_nets(nets, config, "cpu", scripted=True, num_threads=threads)
    for f in events[:warmup]:
        pipe.run(f)
    totals, stages = [], {k: [] for k in STAGES}
    n_build = n_filter = n_hits = 0
    for f in events:
        t0 = time.perf_counter()
        res = pipe.run(f)
        totals.append((time.perf_counter() - t0) * 1e3)
        for k in STAGES:
            stages[k].append(res.times_ms[k])
        n_build += res.edges["build"]
        n_filter += res.edges["filter"]
        n_hits += f.shape[0]
    return {"events": len(events), "mean_ms": float(np.mean(totals)),
            "median_ms": float(np.median(totals)), "p90_ms": float(np.percentile(totals, 90)),
            "stages_ms": {k: float(np.mean(v)) for k, v in stages.items()},
            "build_edges_per_hit": n_build / n_hits, "filter_edges_per_hit": n_filter / n_hits,
            "radius": config.radius, "filter_cut": config.filter_cut}


def describe(name: str, r: dict[str, Any]) -> str:
    st = "  ".join(f"{k} {v:.2f}" for k, v in r["stages_ms"].items())
    return (f"{name}: mean {r['mean_ms']:.2f} ms/event, median {r['median_ms']:.2f}, "
            f"p90 {r['p90_ms']:.2f} over {r['events']} events | {st} | edges/hit "
            f"{r['build_edges_per_hit']:.1f} -> {r['filter_edges_per_hit']:.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=Path, default=None, help="default: shared hnl-lrt-100")
    ap.add_argument("--weights", type=Path, default=None, help="default: shipped weights")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--filter-keep", type=float, default=0.25)
    ap.add_argument("--reference-events", type=int, default=100,
                    help="events for the reference-size run (it is slow)")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    args = ap.parse_args(argv)

    path = args.events or hnl_events_dir()
    if path is None:
        print("no events: ../shared/data/hnl-lrt-100 is absent; pass --events", file=sys.stderr)
        return 2
    events = [ev.features for ev in iter_events(path)]
    tune_allocator()  # as the exatrkx command does
    print(f"{len(events)} events, {sum(len(f) for f in events)} hits, "
          f"torch threads {args.threads}", flush=True)
    calib = events[:10]
    out: dict[str, Any] = {}
    try:
        nets, config = load_models(args.weights)
        trained = True
    except InputError as exc:
        if args.weights is not None:
            raise
        print(f"({exc}; timing random-init nets)", flush=True)
        config = PipelineConfig()
        nets = build_models(config, seed=0)
        trained = False
    if not trained:
        config = calibrate_filter(nets, config, calib, args.filter_keep)
    ours = time_pipeline(nets, config, events, args.threads)
    ours["trained_weights"] = trained
    out["ours"] = ours
    print(describe("ours", ours), flush=True)

    if not args.no_reference:
        ref_nets = build_models(REFERENCE, seed=0)
        ref_cfg = match_radius(ref_nets, REFERENCE, calib, ours["build_edges_per_hit"])
        ref_cfg = calibrate_filter(ref_nets, ref_cfg, calib, args.filter_keep)
        ref = time_pipeline(ref_nets, ref_cfg, events[: args.reference_events], args.threads,
                            warmup=2)
        out["reference_sizes"] = ref
        print(describe("reference sizes", ref), flush=True)
        same = [f for f in events[: args.reference_events]]
        if len(same) != len(events):
            ours_same = time_pipeline(nets, config, same, args.threads)
            out["ours_same_events"] = ours_same
            ratio = ref["mean_ms"] / ours_same["mean_ms"]
        else:
            ratio = ref["mean_ms"] / ours["mean_ms"]
        out["ratio_reference_over_ours"] = ratio
        print(f"reference sizes / ours (mean): {ratio:.1f}x", flush=True)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
