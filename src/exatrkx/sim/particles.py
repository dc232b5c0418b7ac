"""The generator-level particles of one event, as arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Mass (GeV) and charge of the particles a gun can shoot, by PDG id (particle, not antiparticle).
PDG_TABLE: dict[int, tuple[float, float]] = {
    11: (0.000511, -1.0), 13: (0.105658, -1.0), 211: (0.139570, 1.0), 321: (0.493677, 1.0),
    2212: (0.938272, 1.0), 22: (0.0, 0.0), 2112: (0.939565, 0.0), 130: (0.497611, 0.0),
    310: (0.497611, 0.0), 111: (0.134977, 0.0), 12: (0.0, 0.0), 14: (0.0, 0.0),
}


def pdg_mass_charge(pdg: int) -> tuple[float, float]:
    """Mass (GeV) and charge (e) of a PDG id known to :data:`PDG_TABLE` (antiparticles too).

    Raises:
        KeyError: for an id not in the table.
    """
    mass, charge = PDG_TABLE[abs(int(pdg))]
    neutral_self_conjugate = charge == 0.0
    return mass, (charge if pdg > 0 or neutral_self_conjugate else -charge)


@dataclass
class ParticleSet:
    """Particles of one event (``P`` of them), ready to be propagated.

    Attributes:
        particle_id: int64 ``[P]`` unique positive ids within the event.
        pdg: int64 ``[P]`` PDG particle type.
        vertex: float64 ``[P, 3]`` production vertex, mm.
        mom: float64 ``[P, 3]`` momentum at production, GeV.
        charge: float64 ``[P]`` charge, e.
        mass: float64 ``[P]`` mass, GeV.
        max_path: float64 ``[P]`` path length after which the particle is gone (decay), mm;
            ``inf`` for stable particles.
        propagate: bool ``[P]`` whether the particle is tracked through the detector (charged
            and inside the kinematic acceptance).
        parent_id: int64 ``[P]`` id of the particle it came from (0: none or unknown).
    """

    particle_id: np.ndarray
    pdg: np.ndarray
    vertex: np.ndarray
    mom: np.ndarray
    charge: np.ndarray
    mass: np.ndarray
    max_path: np.ndarray
    propagate: np.ndarray
    parent_id: np.ndarray

    def __len__(self) -> int:
        return int(self.particle_id.shape[0])

    @classmethod
    def empty(cls) -> ParticleSet:
        return cls.from_rows([])

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> ParticleSet:
        """Rows of (particle_id, pdg, vx, vy, vz, px, py, pz, charge, mass, max_path, propagate,
        parent_id)."""
        a = np.array(rows, dtype=np.float64).reshape(-1, 13)
        return cls(particle_id=a[:, 0].astype(np.int64), pdg=a[:, 1].astype(np.int64),
                   vertex=a[:, 2:5].copy(), mom=a[:, 5:8].copy(), charge=a[:, 8].copy(),
                   mass=a[:, 9].copy(), max_path=a[:, 10].copy(), propagate=a[:, 11] > 0.5,
                   parent_id=a[:, 12].astype(np.int64))

    @classmethod
    def concat(cls, parts: list[ParticleSet]) -> ParticleSet:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in (
            "particle_id", "pdg", "vertex", "mom", "charge", "mass", "max_path", "propagate",
            "parent_id")))

    def shifted(self, offset: np.ndarray) -> ParticleSet:
        """The same particles with every vertex moved by ``offset`` ``[3]`` (mm)."""
        return ParticleSet(self.particle_id, self.pdg, self.vertex + np.asarray(offset)[None, :],
                           self.mom, self.charge, self.mass, self.max_path, self.propagate,
                           self.parent_id)
