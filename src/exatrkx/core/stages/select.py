"""Track selection after labelling: drop tracks whose measured curvature says they are slow.

A charged particle below about 0.3 GeV curls back inside a 1 m tracker in a 2 T field
(radius of curvature ``R = pT / (0.3 B)``: 0.5 m at 0.3 GeV). The GNN links its hits
correctly but the labels cut a looper into arcs, and each arc holds less than half of the
particle's hits: a fake track under double-majority matching. Trackers therefore report
tracks above a minimum pT; this module measures it from the hits alone.

For each track with at least 3 hits, a circle is fitted to the transverse positions
(algebraic least squares, in coordinates centred on the track's hits) and
``pT = 0.3 B R``. A short arc cannot tell 0.4 GeV from 40 GeV (a forward track seen only
by the pixel disks spans a few cm), so a track is only judged when its transverse extent
``L`` (diagonal of its hits' x-y bounding box) is long enough that a track at the threshold
would show a sagitta ``L**2 / (8 R_min)`` of at least ``min_sagitta`` mm. Judged tracks
with a fitted pT below the threshold lose their label (-1); the others keep theirs,
renumbered so that labels stay ``0..T-1`` in the order of each track's smallest hit.
"""

from __future__ import annotations

import numpy as np

from exatrkx.constants import GEV_PER_TESLA_MM


def track_pt(xy: np.ndarray, labels: np.ndarray, field: float) -> np.ndarray:
    """Fitted transverse momentum of each track (GeV), f64 ``[T]`` for labels ``0..T-1``.

    Args:
        xy: f64 ``[N, 2]`` transverse hit positions in mm.
        labels: i64 ``[N]``, -1 = in no track.
        field: solenoid field in tesla.

    Returns:
        ``inf`` for tracks with fewer than 3 hits or collinear hits (no curvature measured).
    """
    used = labels >= 0
    n_tracks = int(labels.max()) + 1 if used.any() else 0
    t = labels[used]
    x, y = xy[used, 0], xy[used, 1]

    def total(v: np.ndarray) -> np.ndarray:
        return np.bincount(t, weights=v, minlength=n_tracks)

    n = np.bincount(t, minlength=n_tracks).astype(np.float64)
    safe = np.maximum(n, 1.0)
    x = x - (total(x) / safe)[t]
    y = y - (total(y) / safe)[t]
    w = x * x + y * y
    sxx, syy, sxy = total(x * x), total(y * y), total(x * y)
    swx, swy, sw = total(w * x), total(w * y), total(w)
    # x^2 + y^2 + D x + E y + F = 0 in least squares; centred sums of x and y vanish
    det = sxx * syy - sxy * sxy
    ok = (n >= 3) & (det > 1e-12 * (sxx + syy) ** 2)
    det = np.where(ok, det, 1.0)
    d = -(swx * syy - swy * sxy) / det
    e = -(swy * sxx - swx * sxy) / det
    radius = np.sqrt(np.maximum((d * d + e * e) / 4.0 + sw / safe, 0.0))
    return np.where(ok, GEV_PER_TESLA_MM * field * radius, np.inf)


def transverse_extent(xy: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Diagonal of each track's x-y bounding box (mm), f64 ``[T]``."""
    used = labels >= 0
    n_tracks = int(labels.max()) + 1 if used.any() else 0
    t = labels[used]
    lo = np.full((n_tracks, 2), np.inf)
    hi = np.full((n_tracks, 2), -np.inf)
    for k in range(2):
        np.minimum.at(lo[:, k], t, xy[used, k])
        np.maximum.at(hi[:, k], t, xy[used, k])
    return np.hypot(*(hi - lo).T) if n_tracks else np.zeros(0)


def select_tracks(xy: np.ndarray, labels: np.ndarray, min_pt: float, min_sagitta: float,
                  field: float) -> np.ndarray:
    """Labels with the tracks measured below ``min_pt`` removed (see the module docstring).

    Args:
        xy: f64 ``[N, 2]`` transverse hit positions in mm.
        labels: i64 ``[N]`` tracks ``0..T-1`` numbered by smallest hit, -1 = none.
        min_pt: GeV; 0 keeps every track.
        min_sagitta: mm; a track is judged only if a track at ``min_pt`` would curve this
            much over its transverse extent.
        field: tesla.

    Returns:
        i64 ``[N]`` new labels, ``0..T'-1`` in the same order, -1 for removed tracks' hits.
    """
    if min_pt <= 0 or not (labels >= 0).any():
        return labels
    pt = track_pt(xy, labels, field)
    r_min = min_pt / (GEV_PER_TESLA_MM * field)
    extent = transverse_extent(xy, labels)
    drop = (pt < min_pt) & (extent * extent / (8.0 * r_min) >= min_sagitta)
    if not drop.any():
        return labels
    remap = np.where(drop, -1, np.cumsum(~drop) - 1)
    out = labels.copy()
    used = labels >= 0
    out[used] = remap[labels[used]]
    return out
