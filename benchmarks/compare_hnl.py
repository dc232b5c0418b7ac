"""Compare simulated HNL events with the shared real sample (hnl-lrt-100).

Prints spacepoints-per-event statistics and r / |z| summaries of both, and writes a
histogram overlay (spacepoints per event, r, z) to ``--out``.

    .venv/bin/python benchmarks/compare_hnl.py --events 100 --seed 1234 --out compare_hnl.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from exatrkx.io import iter_events
from exatrkx.io.shared import hnl_events_dir
from exatrkx.sim.simulate import simulate_events


def _features(events) -> tuple[np.ndarray, np.ndarray]:
    """Spacepoints per event ``[E]`` and all features ``[N, 3]`` (r/1000, phi/pi, z/1000)."""
    counts, feats = [], []
    for ev in events:
        counts.append(ev.num_hits)
        feats.append(ev.features)
    return np.array(counts), np.concatenate(feats)


def _row(name: str, values: np.ndarray) -> str:
    q = np.percentile(values, [0, 10, 25, 50, 75, 90, 100])
    return (f"{name:<28s}" + "".join(f"{v:>9.0f}" for v in q) + f"{np.mean(values):>9.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--data", type=Path, default=None, help="real events (default: shared)")
    ap.add_argument("--out", type=Path, default=Path("compare_hnl.png"))
    args = ap.parse_args(argv)

    data = args.data or hnl_events_dir()
    if data is None or not Path(data).exists():
        print("shared HNL sample not found (../shared/data/hnl-lrt-100)", file=sys.stderr)
        return 2
    real_n, real_f = _features(iter_events(data))
    sim_n, sim_f = _features(simulate_events("hnl", args.events, args.seed))

    head = f"{'':<28s}" + "".join(f"{h:>9s}" for h in
                                   ("min", "q10", "q25", "median", "q75", "q90", "max", "mean"))
    print(head)
    print(_row(f"real spacepoints ({len(real_n)} ev)", real_n))
    print(_row(f"sim spacepoints ({len(sim_n)} ev)", sim_n))
    print(_row("real r [mm]", real_f[:, 0] * 1000))
    print(_row("sim r [mm]", sim_f[:, 0] * 1000))
    print(_row("real |z| [mm]", np.abs(real_f[:, 2]) * 1000))
    print(_row("sim |z| [mm]", np.abs(sim_f[:, 2]) * 1000))
    print()
    print(f"{'fraction of spacepoints':<28s}{'pixel':>9s}{'s-strip':>9s}{'l-strip':>9s}"
          f"{'barrel':>9s}")
    for name, f in (("real", real_f), ("sim", sim_f)):
        r, z = f[:, 0] * 1000, np.abs(f[:, 2]) * 1000
        pix = (r < 200).mean()
        lst = (r > 710).mean()
        barrel = ((r > 200) & (z < 1100) | (r < 200) & (z < 560)).mean()
        print(f"{name:<28s}{pix:>9.3f}{1 - pix - lst:>9.3f}{lst:>9.3f}{barrel:>9.3f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    bins = np.linspace(0, max(real_n.max(), sim_n.max()) * 1.05, 25)
    axes[0].hist(real_n, bins=bins, histtype="step", lw=2, label="real (hnl-lrt-100)")
    axes[0].hist(sim_n, bins=bins, histtype="step", lw=2, label="simulated")
    axes[0].set_xlabel("spacepoints per event")
    axes[0].legend()
    for ax, col, scale, label, rng in ((axes[1], 0, 1000, "r [mm]", (0, 1100)),
                                       (axes[2], 2, 1000, "z [mm]", (-3100, 3100))):
        b = np.linspace(*rng, 221)
        ax.hist(real_f[:, col] * scale, bins=b, histtype="step", density=True, label="real")
        ax.hist(sim_f[:, col] * scale, bins=b, histtype="step", density=True, label="simulated")
        ax.set_xlabel(label)
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
