"""Simulated HNL events against the shared real sample (hnl-lrt-100), side by side.

Prints spacepoints per event, r, z and |eta| of both samples with two-sample distances
(Kolmogorov-Smirnov D, Wasserstein in units of the real sample's spread), and the pipeline's
edges per hit after build, filter and GNN on both (the nets must see the two alike); writes
the figure to ``--out``.

    .venv/bin/python benchmarks/compare_hnl.py --events 100 --seed 1234 \\
        --out docs/simulation/compare_hnl.png --json compare_hnl.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from exatrkx.io import iter_events
from exatrkx.io.shared import hnl_events_dir
from exatrkx.physics.samples import QUANTITIES, plot_comparison
from exatrkx.study.simulation import check_simulation
from exatrkx.util.jsonsafe import dumps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100, help="events of each sample")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--data", type=Path, default=None, help="real events (default: shared)")
    ap.add_argument("--weights", default=None, help="weights for the edges per hit")
    ap.add_argument("--out", type=Path, default=Path("compare_hnl.png"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    data = args.data or hnl_events_dir()
    if data is None or not Path(data).exists():
        print("shared HNL sample not found (../shared/data/hnl-lrt-100)", file=sys.stderr)
        return 2
    real_events = list(iter_events(data))[:args.events]
    check = check_simulation(real_events, "real (hnl-lrt-100)", args.seed,
                             None if args.weights is None else Path(args.weights))
    real, sim, summary = check.real, check.simulated, check.summary
    print(f"{'':<24s}{'real mean':>12s}{'sim mean':>12s}{'real med.':>12s}{'sim med.':>12s}"
          f"{'KS D':>9s}{'W/sd':>9s}")
    for key, (label, unit) in QUANTITIES.items():
        q = summary["quantities"][key]
        name = f"{label} [{unit}]" if unit else label
        print(f"{name:<24s}{q['mean'][real.name]:>12.1f}{q['mean'][sim.name]:>12.1f}"
              f"{q['median'][real.name]:>12.1f}{q['median'][sim.name]:>12.1f}"
              f"{q['ks']:>9.3f}{q['wasserstein_sd']:>9.3f}")
    ratio = summary["quantities"]["spacepoints"]["mean"]
    print(f"mean spacepoints: simulated / real = {ratio[sim.name] / ratio[real.name]:.3f}")
    edges = summary["edges_per_hit"]
    print("edges per hit:   " + "  ".join(
        f"{k} real {edges['real'][k]:.2f} / sim {edges['simulated'][k]:.2f} "
        f"({edges['real'][k] / edges['simulated'][k] - 1:+.1%})" for k in edges["real"]))
    plot_comparison(real, sim, summary, args.out)
    print(f"wrote {args.out}")
    if args.json:
        args.json.write_text(dumps(summary, indent=2) + "\n")
    ok = abs(ratio[sim.name] / ratio[real.name] - 1) <= 0.10 and all(
        abs(edges["real"][k] / edges["simulated"][k] - 1) <= 0.15 for k in ("build", "filter"))
    return 0 if ok and np.isfinite(ratio[sim.name]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
