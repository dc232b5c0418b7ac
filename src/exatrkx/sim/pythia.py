"""Pythia 8 event generation: the heavy-neutral-lepton signal and minimum-bias interactions.

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

from exatrkx.sim.particles import ParticleSet

#: PDG id given to the heavy neutral lepton (not used by Pythia's own particle table).
HNL_ID = 9990012

#: Largest seed Pythia accepts.
MAX_PYTHIA_SEED = 900_000_000

#: Particle ids are ``interaction * ID_STRIDE + index in the Pythia event record``.
ID_STRIDE = 100_000


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


def extract(event: Any, interaction: int, min_pt: float, max_eta: float,
            keep_ids: tuple[int, ...] = (HNL_ID,)) -> ParticleSet:
    """The particles of a Pythia event record that the detector can see, plus ``keep_ids``.

    Kept: final-state charged particles, and charged hadrons/leptons that decayed in flight
    more than 1 mm from their production vertex (tracked up to that distance); they are marked
    for propagation when ``pT >= min_pt`` and ``|eta| <= max_eta``, others are dropped. The
    decaying copy of a particle in ``keep_ids`` (e.g. the HNL) is kept too, not propagated.

    Args:
        event: ``pythia.event``.
        interaction: interaction number in the bunch crossing (0 = the hard one); particle ids
            are ``interaction * ID_STRIDE + index``.
        min_pt: transverse momentum threshold, GeV.
        max_eta: pseudorapidity acceptance.
        keep_ids: |PDG ids| kept whatever their charge.
    """
    rows = []
    base = interaction * ID_STRIDE
    size = event.size()
    for i in range(1, size):
        a = event[i]
        charged = a.isCharged()
        final = a.isFinal()
        id_abs = a.idAbs()
        keep_special = id_abs in keep_ids
        if not charged and not keep_special:
            continue
        max_path = np.inf
        if not final:
            d1 = a.daughter1()
            if d1 <= 0 or not 91 <= event[d1].statusAbs() <= 99:
                continue
            if not keep_special:
                if not (a.isHadron() or a.isLepton()):
                    continue
                max_path = (a.vDec() - a.vProd()).pAbs()
                if max_path < 1.0:
                    continue
        propagate = charged and a.pT() >= min_pt and abs(a.eta()) <= max_eta
        if not propagate and not keep_special:
            continue
        v = a.vProd()
        rows.append((base + i, a.id(), v.px(), v.py(), v.pz(), a.px(), a.py(), a.pz(),
                     a.charge(), a.m(), max_path, propagate,
                     base + a.mother1() if a.mother1() > 0 else 0))
    return ParticleSet.from_rows(rows)
