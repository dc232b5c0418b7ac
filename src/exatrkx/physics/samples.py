"""Two samples of events side by side: do simulated events look like the real ones?

Compared per spacepoint: transverse radius ``r``, ``z`` and ``|eta|`` (of the spacepoint's
position seen from the origin); per event: spacepoints. Each distribution gets two two-sample
distances: Kolmogorov-Smirnov's ``D`` (largest gap between the cumulative distributions, 0 to
1) and the first Wasserstein distance relative to the first sample's spread (the average shift
of the distribution, in units of its standard deviation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from exatrkx.io import Event

#: The compared quantities: key -> (label, unit).
QUANTITIES: dict[str, tuple[str, str]] = {
    "spacepoints": ("spacepoints per event", ""),
    "r": ("r", "mm"),
    "z": ("z", "mm"),
    "abs_eta": ("|eta|", ""),
}


@dataclass
class Sample:
    """The compared quantities of one sample of events."""

    name: str
    values: dict[str, np.ndarray]

    @classmethod
    def of(cls, name: str, events: Iterable[Event]) -> Sample:
        counts, feats = [], []
        for ev in events:
            counts.append(ev.num_hits)
            feats.append(ev.features)
        f = np.concatenate(feats) if feats else np.zeros((0, 3), np.float32)
        r, z = f[:, 0].astype(np.float64) * 1000.0, f[:, 2].astype(np.float64) * 1000.0
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.abs(np.arcsinh(z / r))
        return cls(name, {"spacepoints": np.asarray(counts, np.float64), "r": r, "z": z,
                          "abs_eta": eta[np.isfinite(eta)]})

    @property
    def events(self) -> int:
        return len(self.values["spacepoints"])


def distances(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Kolmogorov-Smirnov ``D`` and its p-value, and the Wasserstein distance in units of
    ``a``'s standard deviation."""
    if len(a) == 0 or len(b) == 0:
        return {"ks": float("nan"), "ks_pvalue": float("nan"), "wasserstein_sd": float("nan")}
    ks = stats.ks_2samp(a, b)
    spread = float(np.std(a)) or 1.0
    return {"ks": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
            "wasserstein_sd": float(stats.wasserstein_distance(a, b)) / spread}


def compare(reference: Sample, other: Sample) -> dict[str, Any]:
    """Means, medians and distances of every quantity (``other`` against ``reference``)."""
    out: dict[str, Any] = {"reference": reference.name, "other": other.name,
                           "events": {reference.name: reference.events,
                                      other.name: other.events}, "quantities": {}}
    for key in QUANTITIES:
        a, b = reference.values[key], other.values[key]
        out["quantities"][key] = {
            "mean": {reference.name: float(np.mean(a)) if len(a) else float("nan"),
                     other.name: float(np.mean(b)) if len(b) else float("nan")},
            "median": {reference.name: float(np.median(a)) if len(a) else float("nan"),
                       other.name: float(np.median(b)) if len(b) else float("nan")},
            **distances(a, b)}
    return out


def plot_comparison(reference: Sample, other: Sample, summary: dict[str, Any],
                    out_png: str | Path) -> Path:
    """The four distributions side by side (normalised), with their distances."""
    import matplotlib  # a heavy import: only when plots are drawn

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 4.0), dpi=100, layout="constrained")
    axes = fig.subplots(1, 4)
    ranges = {"spacepoints": None, "r": (0.0, 1100.0), "z": (-3100.0, 3100.0),
              "abs_eta": (0.0, 4.5)}
    for ax, key in zip(axes, QUANTITIES, strict=True):
        a, b = reference.values[key], other.values[key]
        span = ranges[key] or (0.0, max(float(a.max(initial=1)), float(b.max(initial=1))) * 1.05)
        bins = np.linspace(span[0], span[1], 25 if key == "spacepoints" else 111)
        ax.hist(a, bins=bins, histtype="step", density=True, lw=1.6,
                label=f"{reference.name} ({reference.events} events)")
        ax.hist(b, bins=bins, histtype="step", density=True, lw=1.6,
                label=f"{other.name} ({other.events} events)")
        label, unit = QUANTITIES[key]
        d = summary["quantities"][key]
        ax.set_xlabel(f"{label} [{unit}]" if unit else label)
        ax.set_title(f"KS D = {d['ks']:.3f}, W = {d['wasserstein_sd']:.3f} sd", fontsize=9)
        if key != "spacepoints":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("normalised")
    axes[0].legend(fontsize=8)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
