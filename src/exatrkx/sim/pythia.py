"""Pythia 8 event generation: the heavy-neutral-lepton signal, top pairs and minimum-bias
interactions.

The HNL set-up: pp collisions, ``W -> l N`` (l = e or mu) with a new Majorana fermion N
(PDG id :data:`HNL_ID`, a spare id) of a few GeV and a proper decay length ``c tau`` of
millimetres, decaying to ``l pi`` or ``l l nu``. Pythia decays it at a displaced vertex, so its
daughters start away from the beam line. Initial- and final-state radiation, multiple parton
interactions (the underlying event) and hadronisation are Pythia's defaults.

Pythia is slow to initialise, so instances are kept in a :class:`PythiaCache` keyed by their
settings; each event re-seeds the instance's random generator, so an event depends only on
its seed (Pythia keeps a few adaptive phase-space maxima between events; these can, rarely,
make an event depend on which events the same instance generated before).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from exatrkx.sim.particles import PARTICLE_DTYPE, empty_particles

#: PDG id given to the heavy neutral lepton (not used by Pythia's own particle table).
HNL_ID = 9990012
#: Neutrinos (|PDG id|): never simulated.
NEUTRINOS = (12, 14, 16)

#: Largest seed Pythia accepts.
MAX_PYTHIA_SEED = 900_000_000


@dataclass(frozen=True)
class HNLConfig:
    """Heavy-neutral-lepton signal.

    Attributes:
        mass: N mass, GeV.
        ctau: N proper decay length, mm.
        ecm: centre-of-mass energy, GeV.
        mpi: multiple parton interactions (underlying event) on.
    """

    mass: float = 5.0
    ctau: float = 20.0
    ecm: float = 14000.0
    mpi: bool = True

    def settings(self) -> tuple[str, ...]:
        n = HNL_ID
        m = self.mass
        return (
            f"Beams:eCM = {self.ecm}",
            "WeakSingleBoson:ffbar2W = on",
            f"PartonLevel:MPI = {'on' if self.mpi else 'off'}",
            f"{n}:new = HNL void 2 0 0 {m} 0.0 {m} {m} {self.ctau}",
            f"{n}:mayDecay = on",
            f"{n}:isResonance = off",
            f"{n}:oneChannel = 1 0.20 0 13 -211",
            f"{n}:addChannel = 1 0.20 0 -13 211",
            f"{n}:addChannel = 1 0.10 0 11 -211",
            f"{n}:addChannel = 1 0.10 0 -11 211",
            f"{n}:addChannel = 1 0.10 0 13 -13 14",
            f"{n}:addChannel = 1 0.10 0 -13 13 -14",
            f"{n}:addChannel = 1 0.10 0 13 -11 12",
            f"{n}:addChannel = 1 0.10 0 -13 11 -12",
            "24:onMode = off",
            f"24:addChannel = 1 0.5 103 -13 {n}",
            f"24:addChannel = 1 0.5 103 -11 {n}",
        )


#: Minimum-bias interactions: Pythia's non-diffractive soft QCD (the diffractive part of the
#: inelastic cross section leaves few tracks in the tracker and makes Pythia's initialisation
#: about 15 times slower, so it is left out; MU counts non-diffractive interactions).
MINBIAS_SETTINGS = ("Beams:eCM = 14000.", "SoftQCD:nonDiffractive = on")
#: Top-quark pairs, the field's standard benchmark of a busy hard interaction.
TTBAR_SETTINGS = ("Beams:eCM = 14000.", "Top:qqbar2ttbar = on", "Top:gg2ttbar = on")

_COMMON = ("Print:quiet = on", "Next:numberCount = 0", "Random:setSeed = on",
           "Random:seed = 1")


class PythiaCache:
    """Initialised Pythia instances, one per settings tuple."""

    def __init__(self) -> None:
        self._instances: dict[tuple[str, ...], object] = {}

    def get(self, settings: tuple[str, ...]) -> Any:
        """An initialised ``pythia8mc.Pythia`` for these settings (made on first use).

        Raises:
            RuntimeError: when Pythia rejects a setting or fails to initialise.
        """
        if settings not in self._instances:
            import pythia8mc  # loads Pythia's data tables: only when events are generated

            pythia = pythia8mc.Pythia("", False)
            for line in (*_COMMON, *settings):
                if not pythia.readString(line):
                    raise RuntimeError(f"Pythia rejected the setting '{line}'")
            if not pythia.init():
                raise RuntimeError("Pythia failed to initialise")
            self._instances[settings] = pythia
        return self._instances[settings]


def pythia_seed(rng: np.random.Generator) -> int:
    """A Pythia seed (1..900000000) drawn from ``rng``."""
    return int(rng.integers(1, MAX_PYTHIA_SEED + 1))


def generate(pythia: Any, seed: int, tries: int = 10) -> None:
    """Re-seed ``pythia`` and generate one event into ``pythia.event``.

    Raises:
        RuntimeError: when Pythia fails ``tries`` times in a row.
    """
    pythia.rndm.init(seed)
    for _ in range(tries):
        if pythia.next():
            return
    raise RuntimeError(f"Pythia failed to generate an event {tries} times (seed {seed})")


def record_particles(event: Any, vp: int, neutral: bool) -> tuple[np.ndarray, np.ndarray]:
    """A Pythia event record as generator-level particles for the detector simulation.

    Args:
        event: ``pythia.event``.
        vp: the barcode's vertex primary of this interaction (hard interaction 1).
        neutral: keep neutral final-state particles too (photons convert, neutral hadrons
            decay in flight into charged ones); neutrinos and the HNL are never kept.

    Returns:
        ``(particles, extras)``: final-state particles to simulate, and the decaying HNL
        itself (for the particles table only), both of :data:`PARTICLE_DTYPE`.
    """
    rows, extras = [], []
    for i, a in enumerate(event.particles()):
        if i == 0:
            continue  # the system entry
        id_abs = a.idAbs()
        row = (vp, 0, i, a.id(), a.charge(), a.m(), a.xProd(), a.yProd(), a.zProd(),
               a.tProd(), a.px(), a.py(), a.pz())
        if not a.isFinal():
            if (id_abs == HNL_ID and a.daughter1() > 0
                    and event[a.daughter1()].idAbs() != HNL_ID):
                extras.append(row)
            continue
        if id_abs in NEUTRINOS or id_abs == HNL_ID:
            continue
        if not neutral and a.charge() == 0.0:
            continue
        rows.append(row)
    return (np.array(rows, dtype=PARTICLE_DTYPE) if rows else empty_particles(),
            np.array(extras, dtype=PARTICLE_DTYPE) if extras else empty_particles())
