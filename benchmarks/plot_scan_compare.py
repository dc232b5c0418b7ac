"""Two throughput scans side by side (e.g. before and after a change), same axes.

Each input is a JSON file with scan rows (``option``, ``concurrency``, ``instances``,
``dynamic_batching``, ``throughput_eps``): the ``server_scan`` list of ``exatrkx study
--json`` output (its last line, saved to a file), or ``{"rows": [...]}``.

    .venv/bin/python benchmarks/plot_scan_compare.py before.json after.json out.png \
        [--titles "before,after"]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def rows_of(path: Path) -> list[dict[str, Any]]:
    text = path.read_text().strip()
    doc = json.loads(text.splitlines()[-1]) if not text.startswith("{\n") else json.loads(text)
    return list(doc.get("server_scan") or doc.get("rows") or [])


def draw(ax: Any, rows: list[dict[str, Any]], title: str) -> float:
    keys = sorted({(r["option"], r["instances"], r["dynamic_batching"]) for r in rows})
    top = 0.0
    local_done = False
    for opt, inst, batch in keys:
        if opt == 0:
            if local_done:
                continue
            local_done = True
            pts = {}
            for r in rows:  # option 0: the median over the settings it was measured beside
                if r["option"] == 0:
                    pts.setdefault(r["concurrency"], []).append(r["throughput_eps"])
            xs = sorted(pts)
            ys = [sorted(pts[c])[len(pts[c]) // 2] for c in xs]
            ax.plot(xs, ys, "k-o", lw=2.5, label="option 0 (in process)")
        else:
            sel = sorted((r["concurrency"], r["throughput_eps"]) for r in rows
                         if (r["option"], r["instances"], r["dynamic_batching"]) ==
                         (opt, inst, batch))
            xs, ys = [c for c, _ in sel], [t for _, t in sel]
            ax.plot(xs, ys, "o-" if batch else "s--",
                    label=f"option {opt}, {inst} inst., batching {'on' if batch else 'off'}")
        top = max(top, *ys)
    levels = sorted({r["concurrency"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.minorticks_off()
    ax.set(xlabel="events in flight", ylabel="events / s (median of passes)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return top


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--titles", default="before,after")
    args = parser.parse_args(argv)
    titles = args.titles.split(",")
    fig = Figure(figsize=(13, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    top = max(draw(ax, rows_of(path), title)
              for ax, path, title in zip(axes, (args.first, args.second), titles, strict=True))
    for ax in axes:
        ax.set_ylim(0, top * 1.15)
    fig.savefig(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
