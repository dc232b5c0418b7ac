"""The truth perigee of helices with known answers; residual widths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exatrkx.constants import B_FIELD_T, GEV_PER_TESLA_MM
from exatrkx.physics.resolution import fitted_residuals, truth_perigee, width68


def helix_points(d0: float, z0: float, phi0: float, pt: float, q: int, cot: float,
                 arcs: np.ndarray) -> pd.DataFrame:
    """Particles produced along one helix, ``arcs`` (mm, transverse) after its perigee."""
    t0 = np.array([np.cos(phi0), np.sin(phi0)])
    p0 = d0 * np.array([-t0[1], t0[0]])  # ACTS: d0 = (z x t) . r
    radius = pt / (GEV_PER_TESLA_MM * B_FIELD_T)
    sense = np.sign(q * B_FIELD_T)
    centre = p0 + radius * sense * np.array([t0[1], -t0[0]])
    rows = []
    for s in arcs:
        a = -sense * s / radius  # clockwise for positive sense
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        pos, t = centre + rot @ (p0 - centre), rot @ t0
        rows.append({"particle_id": len(rows) + 1, "vx": pos[0], "vy": pos[1],
                     "vz": z0 + s * cot, "px": pt * t[0], "py": pt * t[1], "pz": pt * cot,
                     "q": q})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("d0", "q", "pt"), [(0.0, 1, 2.0), (0.3, -1, 1.5), (-2.0, 1, 5.0),
                                              (12.0, -1, 0.8)])
def test_perigee_of_a_helix_from_any_production_point(d0: float, q: int, pt: float) -> None:
    arcs = np.array([0.0, 5.0, 40.0, 150.0, -20.0])
    parts = helix_points(d0, 7.5, 0.7, pt, q, cot=0.4, arcs=arcs)
    got_d0, got_z0 = truth_perigee(parts)
    np.testing.assert_allclose(got_d0, d0, atol=1e-6)
    np.testing.assert_allclose(got_z0, 7.5, atol=1e-6)


def test_neutral_straight_line() -> None:
    parts = pd.DataFrame([{"vx": 0.0, "vy": 5.0, "vz": 1.0, "px": 2.0, "py": 0.0, "pz": 2.0,
                           "q": 0}])
    d0, z0 = truth_perigee(parts)
    assert d0[0] == pytest.approx(5.0) and z0[0] == pytest.approx(1.0)


def test_residuals_of_matched_particles() -> None:
    parts = helix_points(0.1, 2.0, -1.0, 4.0, 1, cot=1.0, arcs=np.array([0.0, 30.0]))
    matched = pd.DataFrame({"particle_id": [1, 2], "pt": [4.0, 4.0], "radius": [0.1, 30.0],
                            "reconstructable": [True, True], "track": [1, -1]})
    theta = np.arctan2(1.0, 1.0)
    params = np.array([[9.0] * 6, [0.15, 2.5, -1.0, theta, 1 / (4.4 / np.sin(theta)), 0.0]])
    res = fitted_residuals(parts, matched, params)
    assert res["particle_id"].tolist() == [1]
    assert res["pt_rel"][0] == pytest.approx(0.1)
    assert res["d0"][0] == pytest.approx(0.05) and res["z0"][0] == pytest.approx(0.5)
    none = fitted_residuals(parts, matched.assign(track=-1), params)
    assert none.empty and "pt_rel" in none.columns


def test_width68_is_sigma_for_a_gaussian() -> None:
    rng = np.random.default_rng(3)
    assert width68(rng.normal(0, 0.02, 200_000)) == pytest.approx(0.02, rel=0.02)
    assert np.isnan(width68(np.array([1.0, np.nan])))
