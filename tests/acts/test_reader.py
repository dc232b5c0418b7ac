"""Hits to measurements: the module frames, ACTS' order, the checks of a hit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exatrkx.acts.detector import surface_frames
from exatrkx.acts.reader import MAX_PLANE_DISTANCE_MM, hit_measurements
from exatrkx.errors import InputError
from exatrkx.io import Event, event_sources, read_event


def test_frames_cover_the_generic_detector(acts_detector: Any) -> None:
    frames = surface_frames(acts_detector)
    assert sorted(set(frames.volume.tolist())) == [7, 8, 9, 12, 13, 14, 16, 17, 18]
    assert len(frames) == 18_728 and surface_frames(acts_detector) is frames  # built once
    assert np.all(frames.key[1:] > frames.key[:-1])  # sorted, unique
    np.testing.assert_array_equal(frames.volume, (frames.key >> np.uint64(56)).astype(int))
    # orthonormal local axes
    np.testing.assert_allclose(np.einsum("ij,ij->i", frames.u, frames.u), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.einsum("ij,ij->i", frames.u, frames.v), 0.0, atol=1e-9)
    # pixels 50 um, long strips 10.8 mm along the strip: pitch^2 / 12
    pix = frames.volume == 8
    np.testing.assert_allclose(frames.variance[pix], 0.05 ** 2 / 12)
    assert np.allclose(frames.variance[frames.volume == 17][:, 1], 10.8 ** 2 / 12)
    rows = np.array([0, 100, 18_000])
    rng = np.random.default_rng(1)
    l0, l1 = rng.uniform(-5, 5, 3), rng.uniform(-5, 5, 3)
    back0, back1, off = frames.to_local(rows, frames.to_global(rows, l0, l1))
    np.testing.assert_allclose(back0, l0, atol=1e-9)
    np.testing.assert_allclose(back1, l1, atol=1e-9)
    np.testing.assert_allclose(off, 0.0, atol=1e-9)
    assert frames.rows(np.array([8, 8]), np.array([2, 2]), np.array([1, 99999])).tolist()[1] == -1


def test_measurements_follow_acts_order(acts_events: Path, acts_detector: Any) -> None:
    frames = surface_frames(acts_detector)
    event = read_event(event_sources(acts_events)[0])
    hm = hit_measurements(event, frames)
    assert sorted(hm.order.tolist()) == list(range(event.num_hits))  # every hit once
    keys = frames.key[hm.module].astype(np.float64)
    assert np.all(np.diff(keys) >= 0)  # geometry-id order, as ACTS' digitization
    assert event.hits is not None
    xyz = event.hits[["x", "y", "z"]].to_numpy()[hm.order]
    np.testing.assert_allclose(frames.to_global(hm.module, hm.loc0, hm.loc1), xyz, atol=1e-3)


def moved(event: Event, column: str, value: float) -> Event:
    assert event.hits is not None
    hits = event.hits.copy()
    hits.loc[3, column] = value
    return Event.from_tables(event.name, hits, event.particles, event.truth)


def test_a_hit_off_the_detector_is_named(acts_events: Path, acts_detector: Any) -> None:
    frames = surface_frames(acts_detector)
    source = event_sources(acts_events)[0]
    event = read_event(source)
    hit = int(event.hit_id[3])
    with pytest.raises(InputError, match=rf"event000000000-hits.csv: hit_id {hit} is on volume "
                                         r".* no module of ACTS' generic detector"):
        hit_measurements(moved(event, "module_id", 99999), frames, source)
    assert event.hits is not None
    normal = frames.n[frames.rows(*(event.hits[c].to_numpy()[3:4] for c in (
        "volume_id", "layer_id", "module_id")))][0]
    position = event.hits.loc[3, ["x", "y", "z"]].to_numpy(float)
    shifted = position + 2 * MAX_PLANE_DISTANCE_MM * normal
    ev = moved(moved(moved(event, "x", shifted[0]), "y", shifted[1]), "z", shifted[2])
    with pytest.raises(InputError, match=rf"hit_id {hit} is 0.1 mm from the plane"):
        hit_measurements(ev, frames, source)
