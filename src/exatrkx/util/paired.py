"""Paired differences and their bootstrap intervals (the study's overheads and ratios).

Two ways of serving the same event, timed at nearly the same moment, differ by what the
second adds; the machine's load drifts between moments, so a comparison pairs the events and
reports the median of the per-event differences with a bootstrap interval over the events
(percentile method, a fixed seed: the same numbers give the same interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Resamples of the bootstrap.
RESAMPLES = 2000
#: Coverage of the intervals.
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A median (or a ratio of medians) and its bootstrap interval."""

    median: float
    lo: float
    hi: float

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "lo": self.lo, "hi": self.hi}

    def __str__(self) -> str:
        return f"{self.median:.2f} [{self.lo:.2f}, {self.hi:.2f}]"


NAN_INTERVAL = Interval(math.nan, math.nan, math.nan)


def _clean(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def _bounds(stats: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(stats, [tail, 100.0 - tail])
    return float(lo), float(hi)


def median_interval(values: Sequence[float], level: float = LEVEL,
                    resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """The median of ``values`` and its bootstrap interval (NaN values dropped; all NaN
    when none is left)."""
    arr = _clean(values)
    if arr.size == 0:
        return NAN_INTERVAL
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, (resamples, arr.size))
    lo, hi = _bounds(np.median(arr[idx], axis=1), level)
    return Interval(float(np.median(arr)), lo, hi)


def ratio_interval(numerators: Sequence[float], denominators: Sequence[float],
                   level: float = LEVEL, resamples: int = RESAMPLES,
                   seed: int = 0) -> Interval:
    """``median(numerators) / median(denominators)`` over paired items (the same index is the
    same event), with a bootstrap interval that resamples the pairs together.

    Raises:
        ValueError: the two sequences differ in length.
    """
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    if num.shape != den.shape:
        raise ValueError(f"{num.size} numerators for {den.size} denominators")
    keep = np.isfinite(num) & np.isfinite(den)
    num, den = num[keep], den[keep]
    if num.size == 0 or np.median(den) == 0:
        return NAN_INTERVAL
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num.size, (resamples, num.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = np.median(num[idx], axis=1) / np.median(den[idx], axis=1)
    lo, hi = _bounds(stats[np.isfinite(stats)], level)
    return Interval(float(np.median(num) / np.median(den)), lo, hi)


def paired_differences(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]
                       ) -> list[float]:
    """Per item (event): the median over its repeats of ``a - b`` (the repeats of one item
    are paired too: repeat ``r`` of ``a`` ran next to repeat ``r`` of ``b``).

    Args:
        a, b: per item, the times of its repeats.
    """
    out = []
    for xs, ys in zip(a, b, strict=True):
        diffs = [x - y for x, y in zip(xs, ys, strict=False)
                 if math.isfinite(x) and math.isfinite(y)]
        out.append(float(np.median(diffs)) if diffs else math.nan)
    return out


def per_item_median(values: Sequence[Sequence[float]]) -> list[float]:
    """Per item, the median of its repeats (NaN when it has none)."""
    return [float(np.median(v)) if len(v) else math.nan for v in values]
