"""Resolution of fitted tracks: truth perigee of a particle, residuals, their widths.

Fitted track parameters are ACTS' bound parameters at the perigee of the z axis through the
origin: ``loc0`` (d0, mm), ``loc1`` (z0, mm), ``phi``, ``theta``, ``q/p`` (e/GeV). The truth
is each particle's helix in the uniform solenoid field, from its production vertex and
momentum, taken to its point of closest approach to the z axis (the same perigee):

- d0 follows ACTS' sign convention, ``d0 = (z_hat x t) . r_pca`` with ``t`` the direction
  at the point of closest approach;
- z0 is the height there (the helix followed forwards or backwards from production).

Residuals are taken for each matched particle with its matched track (one track per
particle, see :func:`exatrkx.physics.metrics.evaluate_tracks`); a width is the half width of
the central 68% of the residuals (robust against the few tails a fit leaves), which is the
standard deviation for a Gaussian.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from exatrkx.constants import B_FIELD_T, GEV_PER_TESLA_MM

#: Columns of the fitted parameters: loc0, loc1, phi, theta, q/p (and time, unused).
LOC0, LOC1, PHI, THETA, QOP = range(5)


def truth_perigee(particles: pd.DataFrame, field_t: float = B_FIELD_T
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(d0, z0) in mm of each particle's helix at its closest approach to the z axis.

    Args:
        particles: TrackML particles (``vx, vy, vz, px, py, pz, q``; mm, GeV).
        field_t: the field along z, tesla.
    """
    x, y, z = (particles[c].to_numpy(np.float64) for c in ("vx", "vy", "vz"))
    px, py, pz = (particles[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    q = particles["q"].to_numpy(np.float64)
    pt = np.hypot(px, py)
    with np.errstate(invalid="ignore", divide="ignore"):
        tx, ty = px / pt, py / pt
        cot = pz / pt
        # a straight line (neutral): perpendicular distance and path to the closest point
        d0 = y * tx - x * ty
        path = -(x * tx + y * ty)
        charged = (q != 0) & (pt > 0)
        radius = pt / (GEV_PER_TESLA_MM * field_t * np.where(charged, np.abs(q), 1.0))
        sense = np.sign(q * field_t)  # +1: clockwise seen from +z
        cx, cy = x + radius * sense * ty, y - radius * sense * tx
        rc = np.hypot(cx, cy)
        ux, uy = -cx / rc, -cy / rc          # centre -> point of closest approach
        pca_x, pca_y = cx + radius * ux, cy + radius * uy
        t_pca_x, t_pca_y = sense * uy, -sense * ux
        u0x, u0y = (x - cx) / radius, (y - cy) / radius  # centre -> production point
        angle = np.arctan2(u0x * uy - u0y * ux, u0x * ux + u0y * uy)
        d0 = np.where(charged, pca_y * t_pca_x - pca_x * t_pca_y, d0)
        path = np.where(charged, -sense * angle * radius, path)
    return d0, z + path * cot


def fitted_residuals(particles: pd.DataFrame, matched: pd.DataFrame, params: np.ndarray,
                     field_t: float = B_FIELD_T) -> pd.DataFrame:
    """Residuals of the matched particles' fitted tracks.

    Args:
        particles: the event's TrackML particles table.
        matched: rows of :class:`~exatrkx.physics.metrics.EventMetrics` ``particles`` (with
            ``particle_id``, ``pt``, ``radius``, ``reconstructable``, ``track``); rows with
            ``track < 0`` are ignored.
        params: ``[T, >=5]`` fitted parameters of the tracks (see the module docstring).
        field_t: the field along z, tesla.

    Returns:
        One row per matched particle: ``particle_id, pt, radius, reconstructable``,
        ``pt_rel`` ((fitted - true) / true pT), ``d0``, ``z0`` (fitted - true, mm).
    """
    rows = matched[matched["track"].to_numpy() >= 0]
    cols = ["particle_id", "pt", "radius", "reconstructable", "pt_rel", "d0", "z0"]
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    truth = particles.drop_duplicates("particle_id").set_index("particle_id").reindex(
        rows["particle_id"].to_numpy()).reset_index()
    d0_true, z0_true = truth_perigee(truth, field_t)
    fit = np.asarray(params, dtype=np.float64)[rows["track"].to_numpy(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        pt_fit = np.abs(np.sin(fit[:, THETA]) / fit[:, QOP])
        pt = rows["pt"].to_numpy(np.float64)
        out = pd.DataFrame({"particle_id": rows["particle_id"].to_numpy(),
                            "pt": pt, "radius": rows["radius"].to_numpy(np.float64),
                            "reconstructable": rows["reconstructable"].to_numpy(bool),
                            "pt_rel": (pt_fit - pt) / pt,
                            "d0": fit[:, LOC0] - d0_true, "z0": fit[:, LOC1] - z0_true})
    return out[cols]


def width68(values: np.ndarray) -> float:
    """Half width of the central 68.27% of the finite ``values``; NaN for fewer than two."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return float("nan")
    lo, hi = np.percentile(v, [15.865, 84.135])
    return float(0.5 * (hi - lo))
