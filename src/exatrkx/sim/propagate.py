"""Helix propagation through the detector, vectorised across particles.

Each step moves every live particle, along its helix in the uniform field, to its next
crossing with any sensitive surface (analytic helix-cylinder and helix-plane intersections for
all particles and surfaces at once), records the crossing and deflects the direction by
multiple scattering in the surface's material (Highland formula). A particle stops when no
surface lies ahead (it left the detector) or when its path length would exceed its limit.

Helix of a particle at transverse position ``p``, direction angle ``phi``, signed curvature
``k = -q KAPPA B / pT`` (positive: turns counter-clockwise seen from +z): its centre is
``c = p + (-sin phi, cos phi) / k`` and after a transverse arc ``s`` it is at
``c + (sin(phi + k s), -cos(phi + k s)) / k``, ``z + s pz / pT``, with a path length
``s p / pT``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exatrkx.constants import GEV_PER_TESLA_MM as KAPPA
from exatrkx.sim.detector import Detector

#: Transverse arc (mm) below which a crossing counts as the point the particle stands on.
_TOL = 1e-6


@dataclass
class Crossings:
    """Every surface crossing of one propagation, in step order.

    Attributes:
        particle: int64 ``[H]`` index of the particle (row of the propagated arrays).
        step: int64 ``[H]`` crossing number along the particle's path (0, 1, ...).
        surface: int64 ``[H]`` surface index in the detector.
        pos: float64 ``[H, 3]`` true position, mm.
        mom: float64 ``[H, 3]`` momentum with which the particle arrives at the crossing
            (before that crossing's scattering), GeV.
        path: float64 ``[H]`` path length from the production vertex, mm.
    """

    particle: np.ndarray
    step: np.ndarray
    surface: np.ndarray
    pos: np.ndarray
    mom: np.ndarray
    path: np.ndarray

    def __len__(self) -> int:
        return int(self.particle.shape[0])


def _wrap(s: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Transverse arc lengths into (0, period]: the first crossing ahead of the particle."""
    s = np.mod(s, period)
    return np.where(s < _TOL, s + period, s)


def propagate(detector: Detector, pos: np.ndarray, mom: np.ndarray, charge: np.ndarray,
              mass: np.ndarray, max_path: np.ndarray, rng: np.random.Generator,
              max_steps: int = 200, scattering: bool = True) -> Crossings:
    """Propagate charged particles from their vertices and list their surface crossings.

    Args:
        detector: the geometry.
        pos: ``[P, 3]`` production vertices, mm.
        mom: ``[P, 3]`` momenta at production, GeV.
        charge: ``[P]`` charges in units of e (non-zero).
        mass: ``[P]`` masses, GeV (for the velocity in the Highland formula).
        max_path: ``[P]`` path-length limit per particle, mm (loopers, decays in flight).
        rng: random numbers for the scattering angles.
        max_steps: at most this many crossings per particle.
        scattering: apply multiple scattering at each crossing.

    Returns:
        the crossings, ordered by step then particle.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _propagate(detector, pos, mom, charge, mass, max_path, rng, max_steps, scattering)


def _propagate(detector: Detector, pos: np.ndarray, mom: np.ndarray, charge: np.ndarray,
               mass: np.ndarray, max_path: np.ndarray, rng: np.random.Generator,
               max_steps: int, scattering: bool) -> Crossings:
    n = pos.shape[0]
    x = np.asarray(pos, dtype=np.float64).copy()
    p = np.asarray(mom, dtype=np.float64).copy()
    q = np.asarray(charge, dtype=np.float64)
    m = np.asarray(mass, dtype=np.float64)
    smax = np.asarray(max_path, dtype=np.float64)
    path = np.zeros(n)
    alive = np.arange(n)
    bfield = detector.field

    cyl = detector.barrel_index
    dsk = detector.disk_index
    cyl_r = detector.position[cyl]
    cyl_r2 = cyl_r ** 2
    cyl_lo, cyl_hi = detector.lo[cyl], detector.hi[cyl]
    dsk_z = detector.position[dsk]
    dsk_lo2, dsk_hi2 = detector.lo[dsk] ** 2, detector.hi[dsk] ** 2
    surf_all = np.concatenate([cyl, cyl, dsk])
    thick = detector.thickness
    barrel_flag = detector.is_barrel

    out_particle, out_step, out_surface, out_pos, out_mom, out_path = [], [], [], [], [], []
    for step in range(max_steps):
        if alive.size == 0:
            break
        xa, pa, qa = x[alive], p[alive], q[alive]
        pt = np.hypot(pa[:, 0], pa[:, 1])
        ptot = np.sqrt(pt ** 2 + pa[:, 2] ** 2)
        cphi, sphi = pa[:, 0] / pt, pa[:, 1] / pt
        phi = np.arctan2(sphi, cphi)
        k = -qa * KAPPA * bfield / pt                      # [A] 1/mm, signed
        inv_k = 1.0 / k
        cot = pa[:, 2] / pt
        period = 2.0 * np.pi / np.abs(k)
        cx = xa[:, 0] - sphi * inv_k
        cy = xa[:, 1] + cphi * inv_k
        c2 = cx ** 2 + cy ** 2
        cn = np.sqrt(c2)
        alpha = np.arctan2(cy, cx)

        # cylinders: sin(psi - alpha) = k (R^2 - |c|^2 - 1/k^2) / (2 |c|)
        w = (cyl_r2[None, :] - c2[:, None] - inv_k[:, None] ** 2) * k[:, None] / (2 * cn[:, None])
        ok = np.abs(w) <= 1.0
        asw = np.arcsin(np.clip(w, -1.0, 1.0))
        psi = np.concatenate([alpha[:, None] + asw, alpha[:, None] + np.pi - asw], axis=1)
        s_cyl = _wrap((psi - phi[:, None]) * inv_k[:, None], period[:, None])
        z_cyl = xa[:, 2:3] + s_cyl * cot[:, None]
        ok2 = np.concatenate([ok, ok], axis=1)
        ok2 &= (z_cyl >= np.concatenate([cyl_lo, cyl_lo])) & (z_cyl <= np.concatenate([cyl_hi,
                                                                                      cyl_hi]))
        s_cyl = np.where(ok2, s_cyl, np.inf)

        # disks: z + s cot = z_d
        s_dsk = (dsk_z[None, :] - xa[:, 2:3]) / cot[:, None]
        s_dsk = np.where(np.isfinite(s_dsk) & (s_dsk > _TOL), s_dsk, np.inf)
        ang = phi[:, None] + k[:, None] * np.where(np.isfinite(s_dsk), s_dsk, 0.0)
        dx = cx[:, None] + np.sin(ang) * inv_k[:, None]
        dy = cy[:, None] - np.cos(ang) * inv_k[:, None]
        r2 = dx ** 2 + dy ** 2
        s_dsk = np.where((r2 >= dsk_lo2) & (r2 <= dsk_hi2), s_dsk, np.inf)

        s_all = np.concatenate([s_cyl, s_dsk], axis=1)
        j = np.argmin(s_all, axis=1)
        s = s_all[np.arange(alive.size), j]
        new_path = path[alive] + s * ptot / pt
        go = np.isfinite(s) & (new_path <= smax[alive])
        if not go.any():
            break
        idx = alive[go]
        s, j = s[go], j[go]
        kg, inv_kg, phig = k[go], inv_k[go], phi[go]
        ang = phig + kg * s
        newx = np.stack([cx[go] + np.sin(ang) * inv_kg, cy[go] - np.cos(ang) * inv_kg,
                         xa[go, 2] + s * cot[go]], axis=1)
        ptg = pt[go]
        newp = np.stack([ptg * np.cos(ang), ptg * np.sin(ang), pa[go, 2]], axis=1)
        surf = surf_all[j]
        x[idx] = newx
        p[idx] = newp
        path[idx] = new_path[go]

        out_particle.append(idx)
        out_step.append(np.full(idx.size, step, dtype=np.int64))
        out_surface.append(surf)
        out_pos.append(newx)
        out_mom.append(newp)
        out_path.append(new_path[go])

        if scattering:
            p[idx] = _scatter(newx, newp, q[idx], m[idx], thick[surf], barrel_flag[surf], rng)
        alive = idx

    if not out_particle:
        e = np.zeros(0, dtype=np.int64)
        return Crossings(e, e, e, np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
    return Crossings(np.concatenate(out_particle), np.concatenate(out_step),
                     np.concatenate(out_surface), np.concatenate(out_pos),
                     np.concatenate(out_mom), np.concatenate(out_path))


def _scatter(pos: np.ndarray, mom: np.ndarray, charge: np.ndarray, mass: np.ndarray,
             thickness: np.ndarray, barrel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Deflect momenta ``[A, 3]`` by Gaussian angles of the Highland width; |p| is kept."""
    ptot = np.linalg.norm(mom, axis=1)
    u = mom / ptot[:, None]
    r = np.hypot(pos[:, 0], pos[:, 1])
    normal = np.where(barrel[:, None], np.stack([pos[:, 0] / r, pos[:, 1] / r,
                                                 np.zeros_like(r)], axis=1), [0.0, 0.0, 1.0])
    cos_inc = np.clip(np.abs(np.sum(u * normal, axis=1)), 0.05, 1.0)
    t = thickness / cos_inc
    beta = ptot / np.sqrt(ptot ** 2 + mass ** 2)
    z2 = charge ** 2
    theta0 = 0.0136 / (beta * ptot) * np.sqrt(z2 * t) * (1.0 + 0.038 * np.log(t * z2 / beta ** 2))
    theta0 = np.maximum(theta0, 0.0)
    # two unit vectors perpendicular to u
    a = np.where(np.abs(u[:, 2:3]) < 0.9, [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    e1 = np.cross(u, a)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(u, e1)
    g = rng.standard_normal((u.shape[0], 2)) * theta0[:, None]
    v = u + g[:, 0:1] * e1 + g[:, 1:2] * e2
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v * ptot[:, None]
