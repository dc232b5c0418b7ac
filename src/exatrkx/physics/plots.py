"""Plots of the track efficiency vs pT, eta and production radius (matplotlib, Agg), for one
track finder or several in one figure."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

_AXES = {
    "pt": ("particle $p_T$ [GeV]", "efficiency_vs_pt.png", True),
    "eta": (r"particle $\eta$", "efficiency_vs_eta.png", False),
    "radius": ("production radius [mm]", "efficiency_vs_radius.png", True),
}


def plot_efficiency(summary: Mapping[str, Any], outdir: str | Path) -> list[Path]:
    """Write ``efficiency_vs_{pt,eta,radius}.png`` from ``summary["binned"]``.

    Args:
        summary: output of :func:`exatrkx.physics.metrics.summarize`.
        outdir: created if missing.

    Returns:
        The paths written.
    """
    import matplotlib  # a heavy import: only when plots are drawn

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, (label, filename, log) in _AXES.items():
        binned = summary["binned"][key]
        edges = np.asarray(binned["edges"], dtype=float)
        eff, err, _ = _efficiency_with_errors(binned)
        centres = 0.5 * (edges[1:] + edges[:-1])
        fig = Figure(figsize=(5.5, 4.0))
        ax = fig.subplots()
        ax.errorbar(centres, eff, yerr=err, xerr=0.5 * (edges[1:] - edges[:-1]), fmt="o",
                    ms=4, capsize=0)
        _efficiency_axes(ax, label, edges, log)
        ax.set_title(f"{summary.get('events', '?')} events")
        fig.tight_layout()
        path = out / filename
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths


def plot_efficiency_comparison(summaries: Mapping[str, Mapping[str, Any]], path: str | Path,
                               key: str = "radius", title: str | None = None) -> Path:
    """One figure: the efficiency vs ``key`` of several track finders, from their
    :func:`~exatrkx.physics.metrics.summarize` outputs (same bins), as points with binomial
    errors, each finder a little shifted within its bin so the bars do not hide each other.

    Returns:
        ``path`` (its folder is created).
    """
    import matplotlib  # a heavy import: only when plots are drawn

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    label, _, log = _AXES[key]
    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.subplots()
    edges = np.zeros(2)
    for i, (name, summary) in enumerate(summaries.items()):
        binned = summary["binned"][key]
        edges = np.asarray(binned["edges"], dtype=float)
        eff, err, total = _efficiency_with_errors(binned)
        # geometric centres on a log axis, a small shift per finder
        lo = np.maximum(edges[:-1], edges[1] / 10 if log else edges[0])
        centres = np.sqrt(lo * edges[1:]) if log else 0.5 * (edges[1:] + edges[:-1])
        shift = 1.0 + 0.06 * (i - 0.5 * (len(summaries) - 1))
        ax.errorbar(centres * shift if log else centres, eff, yerr=err, fmt="o-", ms=4,
                    capsize=0, lw=1, label=f"{name} ({int(np.nansum(total))} particles)")
    _efficiency_axes(ax, label, edges, log)
    ax.legend(loc="lower left", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def _efficiency_with_errors(binned: Mapping[str, Any]
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Efficiency per bin (NaN where empty), its binomial error and the bin totals."""
    eff = np.array([np.nan if v is None else v for v in binned["efficiency"]], dtype=float)
    total = np.asarray(binned["total"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.sqrt(np.clip(eff * (1 - eff), 0, None) / total)
    return eff, err, total


def _efficiency_axes(ax: Any, label: str, edges: np.ndarray, log: bool) -> None:
    """Labels, range, scale and grid of an efficiency plot."""
    ax.set_xlabel(label)
    ax.set_ylabel("track efficiency (double majority)")
    ax.set_ylim(0, 1.05)
    if log and edges[0] >= 0:
        ax.set_xscale("symlog", linthresh=max(edges[1], 1e-3))
    ax.set_xlim(edges[0], edges[-1])
    ax.grid(alpha=0.3)
