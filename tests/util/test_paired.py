"""Paired differences, medians and their bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exatrkx.util.paired import (
    median_interval,
    paired_differences,
    per_item_median,
    ratio_interval,
)


def test_the_interval_holds_the_median_and_narrows_with_more_events() -> None:
    rng = np.random.default_rng(1)
    small = median_interval(rng.normal(3.0, 1.0, 20))
    large = median_interval(rng.normal(3.0, 1.0, 2000))
    for iv in (small, large):
        assert iv.lo <= iv.median <= iv.hi
    assert large.hi - large.lo < small.hi - small.lo
    assert large.lo < 3.0 < large.hi
    assert median_interval([1.0, 2.0, 3.0]) == median_interval([1.0, 2.0, 3.0])  # fixed seed
    assert math.isnan(median_interval([]).median)
    assert median_interval([math.nan, 5.0]).median == 5.0


def test_pairing_removes_what_both_share() -> None:
    rng = np.random.default_rng(2)
    load = rng.uniform(0, 50, (200, 3))  # the machine's load: shared by both, per moment
    base = 10 + load
    other = base + 1.5 + rng.normal(0, 0.05, load.shape)
    diffs = paired_differences(other.tolist(), base.tolist())
    iv = median_interval(diffs)
    assert iv.median == pytest.approx(1.5, abs=0.05)
    assert iv.hi - iv.lo < 0.1  # unpaired, the load's spread would swamp it
    assert per_item_median([[1.0, 3.0, 2.0], []])[0] == 2.0
    assert math.isnan(per_item_median([[]])[0])


def test_ratio_of_medians_and_its_interval() -> None:
    rng = np.random.default_rng(3)
    den = rng.uniform(1.0, 2.0, 300)
    num = 1.2 * den
    iv = ratio_interval(num, den)
    assert iv.median == pytest.approx(1.2)
    assert iv.lo <= 1.2 <= iv.hi
    with pytest.raises(ValueError):
        ratio_interval([1.0], [1.0, 2.0])
    assert math.isnan(ratio_interval([1.0], [0.0]).median)
