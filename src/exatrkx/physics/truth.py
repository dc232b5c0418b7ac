"""What the truth says about an event: the truth graph and each particle's kinematics.

One definition for training and evaluation (they must not drift apart):

- **truth graph**: for each particle (not noise, ``particle_id 0``), its hits ordered by
  ``hit_id`` (the simulation numbers a particle's hits in path order), consecutive hits
  joined; edges as ``(max, min)`` row indices, unique, sorted;
- **pT**: transverse momentum (GeV) at production, from the particles table;
- **production radius**: transverse distance of the production vertex from the beam (mm).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from exatrkx.errors import InputError
from exatrkx.io import Event


def require_truth(event: Event) -> np.ndarray:
    """The particle of each hit (int64 ``[N]``, 0 = noise).

    Raises:
        InputError: the event has no truth (particles and truth files).
    """
    pid = event.particle_id
    if pid is None or event.particles is None:
        raise InputError(f"event {event.name} has no truth (particles and truth files)")
    return pid


def truth_graph(pid: np.ndarray, hit_id: np.ndarray) -> np.ndarray:
    """Consecutive hits of each particle, ordered by hit id: int64 ``[2, T]``.

    Args:
        pid: int64 ``[N]`` particle of each hit (0 = noise, which makes no edges).
        hit_id: int64 ``[N]`` hit ids (path order within a particle).

    Returns:
        Row-index edges ``[0] > [1]``, unique, sorted by ``([0], [1])``.
    """
    pid = np.asarray(pid, dtype=np.int64)
    n = max(int(pid.shape[0]), 1)
    order = np.lexsort((np.asarray(hit_id), pid))
    p = pid[order]
    same = (p[1:] == p[:-1]) & (p[1:] != 0)
    a, b = order[1:][same], order[:-1][same]
    keys = np.unique(np.maximum(a, b).astype(np.int64) * n + np.minimum(a, b))
    return np.stack([keys // n, keys % n]).astype(np.int64)


def event_truth_graph(event: Event) -> np.ndarray:
    """:func:`truth_graph` of an event with truth."""
    return truth_graph(require_truth(event), event.hit_id)


def particle_kinematics(particles: pd.DataFrame) -> pd.DataFrame:
    """``particle_id`` (index), ``pt`` (GeV), ``eta``, ``radius`` (mm) of each particle."""
    parts = particles.drop_duplicates("particle_id").set_index("particle_id")
    px, py, pz = (parts[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / pt)
    radius = np.hypot(parts["vx"].to_numpy(np.float64), parts["vy"].to_numpy(np.float64))
    return pd.DataFrame({"pt": pt, "eta": eta, "radius": radius}, index=parts.index)


def hit_pt(event: Event) -> np.ndarray:
    """f64 ``[N]`` transverse momentum (GeV) of each hit's particle; 0 for noise and for
    particles missing from the particles table."""
    pid = require_truth(event)
    assert event.particles is not None
    pt = particle_kinematics(event.particles)["pt"]
    return pt.reindex(pid).fillna(0.0).to_numpy(np.float64)


def particle_table(event: Event) -> pd.DataFrame:
    """Non-noise particles of the event's hits with ``pt`` (GeV), ``eta``, ``radius`` (mm,
    transverse production radius) and ``nhits`` (hits in this event). Particles missing
    from the particles table get NaN kinematics."""
    pid = require_truth(event)
    assert event.particles is not None
    ids, nhits = np.unique(pid[pid != 0], return_counts=True)
    kin = particle_kinematics(event.particles).reindex(ids)
    return pd.DataFrame({"particle_id": ids, "pt": kin["pt"].to_numpy(),
                         "eta": kin["eta"].to_numpy(), "radius": kin["radius"].to_numpy(),
                         "nhits": nhits})
