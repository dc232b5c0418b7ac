"""Labels to proto-tracks."""

from __future__ import annotations

import numpy as np
import pytest

from exatrkx.acts import finder
from exatrkx.acts.finder import group_tracks


def test_group_tracks_orders_by_r_and_drops_short_ones() -> None:
    labels = np.array([2, 0, 2, -1, 0, 2, 0, 1, 1])
    measurement = np.arange(9) * 10
    r = np.array([30.0, 70.0, 10.0, 5.0, 20.0, 50.0, 40.0, 1.0, 2.0])
    tracks = group_tracks(labels, measurement, r, min_hits=3)
    assert [t.tolist() for t in tracks] == [[40, 60, 10], [20, 0, 50]]  # label 1 too short
    assert group_tracks(np.full(4, -1), np.arange(4), np.ones(4)) == []
    assert group_tracks(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)) == []


class _Spacepoint:
    def __init__(self, measurement: int) -> None:
        self.measurement = measurement


def test_measurement_indices_trust_the_order_only_where_it_holds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[int] = []

    def measurement(sp: _Spacepoint) -> int:
        read.append(sp.measurement)
        return sp.measurement

    monkeypatch.setattr(finder, "_measurement", measurement)
    in_order = [_Spacepoint(i) for i in range(1000)]
    assert finder.measurement_indices(in_order).tolist() == list(range(1000))
    assert len(read) <= finder.ORDER_PROBES  # a sample, not every spacepoint
    # measurement 500 made no spacepoint: the rest are shifted by one, every link is read
    read.clear()
    shifted = [_Spacepoint(i) for i in range(1001) if i != 500]
    assert finder.measurement_indices(shifted).tolist() == [sp.measurement for sp in shifted]
    assert len(read) > len(shifted)
    assert finder.measurement_indices([]).tolist() == []
