"""Generator-level particles of one event, as one numpy record array, and their ids.

A particle's id is ACTS' barcode (vertex primary, vertex secondary, particle, generation,
sub-particle) packed into one positive int64 (:func:`pack_barcode`): the TrackML tables carry
it as ``particle_id`` and 0 stays free for noise. Vertex primary is the interaction number + 1
(the hard interaction is 1, pileup 2, 3, ...), vertex secondary numbers the distinct displaced
production vertices of an interaction (0: the interaction point), particle is the index in the
generator's record, generation and sub-particle are set by Fatras for its secondaries
(photon conversions, bremsstrahlung).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: One row per generated particle (mm, mm/c, GeV, e).
PARTICLE_DTYPE = np.dtype([("vp", np.int64), ("vs", np.int64), ("part", np.int64),
                           ("pdg", np.int64), ("q", np.float64), ("m", np.float64),
                           ("x", np.float64), ("y", np.float64), ("z", np.float64),
                           ("t", np.float64), ("px", np.float64), ("py", np.float64),
                           ("pz", np.float64)])

#: Barcode fields and their bits, packed from the most significant end (63 bits: positive).
BARCODE_BITS: tuple[tuple[str, int], ...] = (("vp", 11), ("vs", 12), ("part", 16),
                                              ("gen", 8), ("sub", 16))
_SHIFT = {"vp": 52, "vs": 40, "part": 24, "gen": 16, "sub": 0}

#: Production vertices nearer than this to the interaction point (mm) are the interaction
#: point (vertex secondary 0): the generator gives decay products of strong decays a vertex
#: femtometres away.
PROMPT_DISTANCE = 1e-3


def empty_particles(n: int = 0) -> np.ndarray:
    """``n`` zeroed rows of :data:`PARTICLE_DTYPE`."""
    return np.zeros(n, dtype=PARTICLE_DTYPE)


def pack_barcode(vp: np.ndarray | int, vs: np.ndarray | int, part: np.ndarray | int,
                 gen: np.ndarray | int = 0, sub: np.ndarray | int = 0) -> np.ndarray:
    """Barcode fields -> int64 particle ids (arrays broadcast).

    Raises:
        OverflowError: a field does not fit its bits.
    """
    values = {"vp": vp, "vs": vs, "part": part, "gen": gen, "sub": sub}
    out = np.zeros(np.broadcast(*(np.asarray(v) for v in values.values())).shape, np.int64)
    for name, bits in BARCODE_BITS:
        v = np.asarray(values[name], dtype=np.int64)
        if np.any(v < 0) or np.any(v >= (1 << bits)):
            raise OverflowError(f"barcode field {name} does not fit in {bits} bits")
        out |= v << np.int64(_SHIFT[name])
    return out


def unpack_barcode(pid: np.ndarray | int) -> dict[str, np.ndarray]:
    """int64 particle ids -> their barcode fields."""
    p = np.asarray(pid, dtype=np.int64)
    return {name: (p >> np.int64(_SHIFT[name])) & np.int64((1 << bits) - 1)
            for name, bits in BARCODE_BITS}


def assign_secondary_vertices(p: np.ndarray) -> None:
    """Number the distinct displaced production vertices 1, 2, ... (in place; 0 = prompt)."""
    if len(p) == 0:
        return
    displaced = np.sqrt(p["x"] ** 2 + p["y"] ** 2 + p["z"] ** 2) > PROMPT_DISTANCE
    if displaced.any():
        pos = np.stack([p["x"], p["y"], p["z"], p["t"]], axis=1)[displaced]
        _, inverse = np.unique(pos, axis=0, return_inverse=True)
        p["vs"][displaced] = inverse.ravel() + 1


#: Mass (GeV) and charge (e) of the particles a gun shoots, by PDG id of the particle.
GUN_PARTICLES: dict[int, tuple[float, float]] = {
    11: (0.000510999, -1.0), 13: (0.1056583755, -1.0), 211: (0.13957039, 1.0),
    321: (0.493677, 1.0), 2212: (0.93827209, 1.0)}


@dataclass(frozen=True)
class GunConfig:
    """A particle gun: ``n_particles`` of one kind, flat in pT, eta and phi.

    Attributes:
        pdg: PDG id (a key of :data:`GUN_PARTICLES`; negative: the antiparticle).
        n_particles: particles per event.
        pt_range: transverse momentum range, GeV.
        eta_range: pseudorapidity range.
        phi_range: azimuth range, rad.
        vertex_r: transverse displacement of each particle's vertex, mm, along its initial
            direction (like the decay of a parent flying the same way).
        vertex_z: z of the vertices, mm (added to the displacement along z).
        random_charge: particle or antiparticle with equal chance.
    """

    pdg: int = 13
    n_particles: int = 10
    pt_range: tuple[float, float] = (1.0, 10.0)
    eta_range: tuple[float, float] = (-2.5, 2.5)
    phi_range: tuple[float, float] = (-math.pi, math.pi)
    vertex_r: float = 0.0
    vertex_z: float = 0.0
    random_charge: bool = True


def gun_particles(rng: np.random.Generator, gun: GunConfig) -> np.ndarray:
    """The gun's particles (vertex primary 1, particle 1..n; displaced ones get vertex
    secondary 1, 2, ...).

    Raises:
        KeyError: a PDG id the gun does not know.
    """
    n = gun.n_particles
    mass, charge = GUN_PARTICLES[abs(gun.pdg)]
    sign = np.full(n, 1 if gun.pdg > 0 else -1, dtype=np.int64)
    if gun.random_charge:
        sign = np.where(rng.random(n) < 0.5, -sign, sign)
    pt = rng.uniform(*gun.pt_range, n)
    eta = rng.uniform(*gun.eta_range, n)
    phi = rng.uniform(*gun.phi_range, n)
    p = empty_particles(n)
    p["vp"], p["part"] = 1, np.arange(1, n + 1)
    p["pdg"], p["q"], p["m"] = sign * abs(gun.pdg), sign * charge, mass
    p["px"], p["py"], p["pz"] = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    p["x"], p["y"] = gun.vertex_r * np.cos(phi), gun.vertex_r * np.sin(phi)
    p["z"] = gun.vertex_z + gun.vertex_r * np.sinh(eta)
    assign_secondary_vertices(p)
    return p
