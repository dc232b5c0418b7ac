"""Geometry of the generic detector."""

from __future__ import annotations

import numpy as np
import pytest

from exatrkx.constants import GEV_PER_TESLA_MM as KAPPA
from exatrkx.sim.detector import generic_detector


@pytest.fixture(scope="module")
def det():
    return generic_detector()


def test_layer_counts_and_ids(det) -> None:
    assert len(det.layers) == 2 * 7 + 4 + 2 * 6 + 4 + 2 * 6 + 2
    assert set(det.volume_id) == {7, 8, 9, 12, 13, 14, 16, 17, 18}
    assert np.all(det.layer_id % 2 == 0) and det.layer_id.min() == 2
    pairs = list(zip(det.volume_id.tolist(), det.layer_id.tolist(), strict=True))
    assert len(set(pairs)) == len(pairs)


@pytest.mark.parametrize(("volume", "radii", "half_length"), [
    (8, [32, 72, 116, 172], 490), (13, [260, 360, 500, 660], 1080), (17, [820, 1020], 1080)])
def test_barrel_radii(det, volume, radii, half_length) -> None:
    sel = det.volume_id == volume
    assert det.is_barrel[sel].all()
    assert det.position[sel].tolist() == radii
    assert det.layer_id[sel].tolist() == [2 * (i + 1) for i in range(len(radii))]
    assert np.allclose(det.hi[sel], half_length) and np.allclose(det.lo[sel], -half_length)


def test_endcaps(det) -> None:
    pix_z = [600, 700, 820, 960, 1100, 1300, 1500]
    strip_z = [1220, 1500, 1800, 2150, 2550, 2950]
    for neg, pos, zs in ((7, 9, pix_z), (12, 14, strip_z), (16, 18, strip_z)):
        assert sorted(np.abs(det.position[det.volume_id == neg])) == zs
        assert (det.position[det.volume_id == neg] < 0).all()
        assert det.position[det.volume_id == pos].tolist() == zs    # layer ids grow with z
    # TrackML convention: ids grow with z in both endcaps
    assert det.position[det.find(9, 2)] == 600 and det.position[det.find(7, 2)] == -1500
    assert det.position[det.find(7, 14)] == -600
    assert det.lo[det.find(9, 2)] == pytest.approx(30) and det.hi[det.find(9, 2)] == 175
    assert det.lo[det.find(14, 2)] == 230 and det.hi[det.find(18, 2)] == 1020


def test_material_resolution_efficiency(det) -> None:
    pix = np.isin(det.volume_id, [7, 8, 9])
    assert ((det.thickness[pix] >= 0.015) & (det.thickness[pix] <= 0.02)).all()
    assert ((det.thickness[~pix] >= 0.02) & (det.thickness[~pix] <= 0.03)).all()
    assert np.allclose(det.sigma_u[pix], 0.05) and np.allclose(det.sigma_v[pix], 0.05)
    assert (det.sigma_v[~pix] >= 0.5).all() and (det.sigma_u[~pix] > 0.05).all()
    assert np.allclose(det.efficiency, 0.99)
    assert np.allclose(det.with_efficiency(0.995).efficiency, 0.995)
    with pytest.raises(ValueError):
        generic_detector(efficiency=1.5)


def test_module_ids(det) -> None:
    s = det.find(8, 2)
    n_phi, n_z = det.layers[s].n_phi[0], int(det.layers[s].n_v[0])
    phi = np.linspace(-np.pi, np.pi, 4001)[:-1]
    z = np.linspace(-489, 489, len(phi))
    xyz = np.stack([32 * np.cos(phi), 32 * np.sin(phi), z], axis=1)
    ids = det.module_id(np.full(len(phi), s), xyz)
    assert ids.min() >= 1 and ids.max() <= n_phi * n_z
    # a full turn in phi at fixed z visits every stave
    ring = det.module_id(np.full(len(phi), s), np.stack([32 * np.cos(phi), 32 * np.sin(phi),
                                                         np.zeros_like(phi)], axis=1))
    assert len(np.unique(ring)) == n_phi
    d = det.find(9, 2)
    r = np.linspace(31, 174, 50)
    ids = det.module_id(np.full(50, d), np.stack([r, np.zeros(50), np.full(50, 600.0)], axis=1))
    assert ids.min() >= 1 and ids.max() <= det.layers[d].n_modules
    assert len(np.unique(ids)) == len(det.layers[d].n_phi)      # one module per ring


def test_curvature_constant() -> None:
    assert 1.0 / (KAPPA * 2.0) == pytest.approx(1667.8, rel=1e-4)   # 1 GeV in 2 T, mm
