"""Event sources and a fast simulation of the generic detector.

Sources (``source=``):

- ``hnl``: Pythia 8 pp -> W -> l N, the heavy neutral lepton N decaying at a displaced vertex
  (see :mod:`exatrkx.sim.pythia`), with the full underlying event;
- ``gun``: a particle gun (:class:`GunConfig`);
- ``minbias``: one Pythia 8 non-diffractive (SoftQCD) interaction.

Any source can get ``pileup`` extra minimum-bias interactions (Poisson mean MU), each at its
own vertex, spread along z (Gaussian, :attr:`SimConfig.beamspot_z`).

Detector simulation (:mod:`exatrkx.sim.propagate`): charged particles with
``pT >= min_pt`` and ``|eta| <= max_eta`` are propagated as helices in the 2 T field from their
production vertex; every crossing of a sensitive surface, in path order and including loopers
up to :attr:`SimConfig.max_path`, is a candidate hit; multiple scattering deflects the particle
at each crossing; a crossing becomes a hit with the layer's efficiency; hits are smeared with
the layer's resolution. Noise hits (``particle_id`` 0), a fraction ``noise`` of the real hits,
are spread uniformly over the sensitive area.

Output tables (TrackML columns):

- ``particle_id`` = ``interaction * 100000 + index in the Pythia record`` (interaction 0 is the
  hard one) or ``1 + index`` for the gun; unique and positive; 0 marks noise.
- ``hit_id`` runs 1..N in random order across the event, but **within each particle increasing
  hit_id is path order** (loopers included); the hits table is sorted by hit_id.
- truth ``tx, ty, tz``: true crossing position; ``tpx, tpy, tpz``: momentum arriving there.
- truth ``weight``: ``w_pt * w_order`` normalised to sum 1 over the event, where
  ``w_pt = 0.2 + 0.8 * clip((pT - 0.5) / 2.5, 0, 1)`` (pT at production, GeV) and
  ``w_order`` = 3 for a particle's first and last hit, 2 for the second and second-to-last,
  1 otherwise; particles with fewer than 4 hits and noise weigh 0.
- particles: every propagated particle (``nhits`` may be 0), plus the HNL itself (q = 0).
  In memory the table has one more column, ``parent_id`` (the mother's ``particle_id``, 0 if
  none; the mother may be absent from the table), which is not written to the CSV files.

Event ``i`` of a run depends only on ``(seed, i)``, so runs can be split and resumed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from exatrkx.errors import InputError
from exatrkx.io import Event, write_trackml
from exatrkx.io.writers import event_name
from exatrkx.sim.detector import Detector, generic_detector
from exatrkx.sim.particles import ParticleSet, pdg_mass_charge
from exatrkx.sim.propagate import propagate
from exatrkx.sim.pythia import (
    HNL_ID,
    MINBIAS_SETTINGS,
    HNLConfig,
    PythiaCache,
    extract,
    generate,
    pythia_seed,
)

SOURCES = ("hnl", "gun", "minbias")


@dataclass(frozen=True)
class GunConfig:
    """Particle gun: ``n_particles`` of one type, flat in pT, eta and phi.

    Attributes:
        pdg: PDG id (e.g. 13 mu-, -13 mu+, 211 pi+, 22 photon).
        n_particles: particles per event.
        pt_range: (min, max) transverse momentum, GeV.
        eta_range: (min, max) pseudorapidity.
        phi_range: (min, max) azimuth, rad.
        vertex_r: transverse displacement of each particle's vertex, mm, along its initial
            direction (like the decay of a parent flying the same way).
        vertex_z: z of the vertices, mm (added to the displacement along z).
        random_charge: flip particle/antiparticle at random (charged types).
    """

    pdg: int = 13
    n_particles: int = 10
    pt_range: tuple[float, float] = (1.0, 10.0)
    eta_range: tuple[float, float] = (-2.5, 2.5)
    phi_range: tuple[float, float] = (-math.pi, math.pi)
    vertex_r: float = 0.0
    vertex_z: float = 0.0
    random_charge: bool = True


@dataclass(frozen=True)
class SimConfig:
    """Detector-simulation settings.

    Attributes:
        min_pt: propagate charged particles above this transverse momentum, GeV.
        max_eta: and inside this |pseudorapidity|.
        max_path: path-length limit of a particle (loopers), mm.
        max_steps: at most this many surface crossings per particle.
        efficiency: hit efficiency of every layer.
        scattering: multiple scattering on/off.
        smear: resolution smearing on/off.
        beamspot_xy: transverse size of the luminous region (Gaussian sigma), mm.
        beamspot_z: its length along z (Gaussian sigma), mm.
        hnl: the HNL signal model.
    """

    min_pt: float = 0.1
    max_eta: float = 5.0
    max_path: float = 3000.0
    max_steps: int = 200
    efficiency: float = 0.99
    scattering: bool = True
    smear: bool = True
    beamspot_xy: float = 0.015
    beamspot_z: float = 50.0
    hnl: HNLConfig = field(default_factory=HNLConfig)

    def detector(self) -> Detector:
        return generic_detector(efficiency=self.efficiency)


class Simulator:
    """Makes events for one configuration; holds the Pythia instances it has initialised."""

    def __init__(self, config: SimConfig | None = None, pythia: PythiaCache | None = None):
        self.config = config or SimConfig()
        self.detector = self.config.detector()
        self.pythia = pythia or PythiaCache()

    # ------------------------------------------------------------------ sources
    def _vertex(self, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        return rng.normal(0.0, [c.beamspot_xy, c.beamspot_xy, c.beamspot_z])

    def _pythia_particles(self, settings: tuple[str, ...], interaction: int,
                          rng: np.random.Generator, need_tracks: bool = False) -> ParticleSet:
        pythia = self.pythia.get(settings)
        c = self.config
        for _ in range(20):
            generate(pythia, pythia_seed(rng))
            ps = extract(pythia.event, interaction, c.min_pt, c.max_eta)
            if not need_tracks or ps.propagate.any():
                break
        return ps.shifted(self._vertex(rng))

    def gun_particles(self, gun: GunConfig, rng: np.random.Generator) -> ParticleSet:
        """The gun's particles (ids 1..n)."""
        n = gun.n_particles
        mass, charge = pdg_mass_charge(gun.pdg)
        pdg = np.full(n, gun.pdg, dtype=np.int64)
        q = np.full(n, charge)
        if gun.random_charge and charge != 0.0:
            flip = rng.random(n) < 0.5
            pdg[flip] *= -1
            q[flip] *= -1
        pt = rng.uniform(*gun.pt_range, size=n)
        eta = rng.uniform(*gun.eta_range, size=n)
        phi = rng.uniform(*gun.phi_range, size=n)
        mom = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)
        vtx = np.stack([gun.vertex_r * np.cos(phi), gun.vertex_r * np.sin(phi),
                        gun.vertex_z + gun.vertex_r * np.sinh(eta)], axis=1)
        return ParticleSet(particle_id=np.arange(1, n + 1, dtype=np.int64), pdg=pdg, vertex=vtx,
                           mom=mom, charge=q, mass=np.full(n, mass),
                           max_path=np.full(n, np.inf), propagate=q != 0.0,
                           parent_id=np.zeros(n, dtype=np.int64))

    def particles(self, source: str, rng: np.random.Generator, pileup: float = 0.0,
                  gun: GunConfig | None = None) -> ParticleSet:
        """Generator-level particles of one event: the source plus Poisson(pileup) minbias."""
        if source == "hnl":
            parts = [self._pythia_particles(self.config.hnl.settings(), 0, rng)]
        elif source == "minbias":
            parts = [self._pythia_particles(MINBIAS_SETTINGS, 0, rng, need_tracks=True)]
        elif source == "gun":
            parts = [self.gun_particles(gun or GunConfig(), rng)]
        else:
            raise InputError(f"unknown source '{source}' (choose from {', '.join(SOURCES)})")
        n_pileup = int(rng.poisson(pileup)) if pileup > 0 else 0
        for j in range(1, n_pileup + 1):
            parts.append(self._pythia_particles(MINBIAS_SETTINGS, j, rng))
        return ParticleSet.concat(parts)

    # ------------------------------------------------------------------ detector
    def event(self, source: str, number: int, seed: int, pileup: float = 0.0,
              noise: float = 0.0, gun: GunConfig | None = None) -> Event:
        """Simulate event ``number`` of the run with this seed."""
        gen_rng, det_rng = (np.random.default_rng(s) for s in
                            np.random.SeedSequence([seed, number]).spawn(2))
        ps = self.particles(source, gen_rng, pileup, gun)
        return self.digitise(event_name(number), ps, det_rng, noise)

    def digitise(self, name: str, ps: ParticleSet, rng: np.random.Generator,
                 noise: float = 0.0) -> Event:
        """Propagate ``ps`` through the detector and build the event's tables."""
        c, det = self.config, self.detector
        sel = np.flatnonzero(ps.propagate)
        limit = np.minimum(ps.max_path[sel], c.max_path)
        cr = propagate(det, ps.vertex[sel], ps.mom[sel], ps.charge[sel], ps.mass[sel], limit,
                       rng, max_steps=c.max_steps, scattering=c.scattering)
        order = np.lexsort((cr.step, cr.particle))
        part = sel[cr.particle[order]]                    # row in ps
        surf, true_pos, mom = cr.surface[order], cr.pos[order], cr.mom[order]
        keep = rng.random(len(part)) < det.efficiency[surf]
        part, surf, true_pos, mom = part[keep], surf[keep], true_pos[keep], mom[keep]
        pos = _smear(det, surf, true_pos, rng) if c.smear else true_pos.copy()

        n_real = len(part)
        n_noise = round(noise * n_real)
        nsurf, npos = _noise_hits(det, n_noise, rng)
        all_surf = np.concatenate([surf, nsurf])
        all_pos = np.concatenate([pos, npos])
        pid = np.concatenate([ps.particle_id[part], np.zeros(n_noise, dtype=np.int64)])

        # hit ids: random across the event, increasing along each particle's path
        n_hits = n_real + n_noise
        ids = rng.permutation(n_hits) + 1
        group = np.concatenate([part, np.full(n_noise, -1)])  # hits already in path order
        ids[np.lexsort((np.arange(n_hits), group))] = ids[np.lexsort((ids, group))]

        pt0 = np.hypot(ps.mom[:, 0], ps.mom[:, 1])
        weight = np.concatenate([_weights(part, pt0), np.zeros(n_noise)])
        if weight.sum() > 0:
            weight /= weight.sum()

        hits = pd.DataFrame({
            "hit_id": ids, "x": all_pos[:, 0], "y": all_pos[:, 1], "z": all_pos[:, 2],
            "volume_id": det.volume_id[all_surf], "layer_id": det.layer_id[all_surf],
            "module_id": det.module_id(all_surf, all_pos)})
        tpos = np.concatenate([true_pos, npos])
        tmom = np.concatenate([mom, np.zeros((n_noise, 3))])
        truth = pd.DataFrame({
            "hit_id": ids, "particle_id": pid, "tx": tpos[:, 0], "ty": tpos[:, 1],
            "tz": tpos[:, 2], "tpx": tmom[:, 0], "tpy": tmom[:, 1], "tpz": tmom[:, 2],
            "weight": weight})
        by_id = np.argsort(ids, kind="stable")
        hits = hits.iloc[by_id].reset_index(drop=True)
        truth = truth.iloc[by_id].reset_index(drop=True)
        particles = pd.DataFrame({
            "particle_id": ps.particle_id, "particle_type": ps.pdg,
            "vx": ps.vertex[:, 0], "vy": ps.vertex[:, 1], "vz": ps.vertex[:, 2],
            "px": ps.mom[:, 0], "py": ps.mom[:, 1], "pz": ps.mom[:, 2],
            "q": np.rint(ps.charge).astype(np.int64),
            "nhits": np.bincount(part, minlength=len(ps)).astype(np.int64),
            "parent_id": ps.parent_id})
        return Event.from_tables(name, hits, particles, truth)


def _smear(det: Detector, surf: np.ndarray, pos: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """Smear true positions ``[H, 3]`` on their surfaces with the layers' resolutions."""
    barrel = det.is_barrel[surf]
    du = rng.standard_normal(len(surf)) * det.sigma_u[surf]
    dv = rng.standard_normal(len(surf)) * det.sigma_v[surf]
    r = np.where(barrel, det.position[surf], np.hypot(pos[:, 0], pos[:, 1]) + dv)
    phi = np.arctan2(pos[:, 1], pos[:, 0]) + du / np.maximum(r, 1.0)
    z = np.where(barrel, pos[:, 2] + dv, det.position[surf])
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _noise_hits(det: Detector, n: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniform over the sensitive area: surfaces ``[n]``, positions ``[n, 3]``."""
    area = det.area
    surf = rng.choice(len(area), size=n, p=area / area.sum()).astype(np.int64)
    lo, hi, at = det.lo[surf], det.hi[surf], det.position[surf]
    barrel = det.is_barrel[surf]
    u = rng.random(n)
    phi = rng.uniform(-np.pi, np.pi, n)
    r = np.where(barrel, at, np.sqrt(lo ** 2 + u * (hi ** 2 - lo ** 2)))
    z = np.where(barrel, lo + u * (hi - lo), at)
    return surf, np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _weights(part: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """TrackML-like hit weights (unnormalised) for hits grouped by particle in path order."""
    if len(part) == 0:
        return np.zeros(0)
    start = np.r_[True, part[1:] != part[:-1]]
    first = np.flatnonzero(start)
    counts = np.diff(np.r_[first, len(part)])
    n = np.repeat(counts, counts)
    i = np.arange(len(part)) - np.repeat(first, counts)
    from_end = n - 1 - i
    edge = np.minimum(i, from_end)
    w_order = np.where(edge == 0, 3.0, np.where(edge == 1, 2.0, 1.0))
    w_pt = 0.2 + 0.8 * np.clip((pt[part] - 0.5) / 2.5, 0.0, 1.0)
    return np.where(n >= 4, w_order * w_pt, 0.0)


# ---------------------------------------------------------------------- public API

def _check_inputs(source: str, n_events: int, seed: int, pileup: float, first_event: int,
                  noise: float) -> None:
    if source not in SOURCES:
        raise InputError(f"unknown source '{source}' (choose from {', '.join(SOURCES)})")
    if n_events <= 0:
        raise InputError(f"number of events must be positive, got {n_events}")
    if seed < 0:
        raise InputError(f"seed must be non-negative, got {seed}")
    if not math.isfinite(pileup) or pileup < 0:
        raise InputError(f"pileup must be a non-negative number, got {pileup}")
    if first_event < 0:
        raise InputError(f"first event number must be non-negative, got {first_event}")
    if not (math.isfinite(noise) and 0.0 <= noise < 1.0):
        raise InputError(f"noise must be in [0, 1), got {noise}")


_DEFAULT_PYTHIA = PythiaCache()


def simulate_event(source: str, number: int = 0, seed: int = 1, pileup: float = 0.0,
                   noise: float = 0.0, gun: GunConfig | None = None,
                   config: SimConfig | None = None) -> Event:
    """Simulate one event (event ``number`` of the run with ``seed``).

    Raises:
        InputError: for an unknown source or out-of-range values.
    """
    _check_inputs(source, 1, seed, pileup, number, noise)
    return Simulator(config, _DEFAULT_PYTHIA).event(source, number, seed, pileup, noise, gun)


def simulate_events(source: str, n_events: int, seed: int, pileup: float = 0.0,
                    first_event: int = 0, noise: float = 0.0, gun: GunConfig | None = None,
                    config: SimConfig | None = None) -> Iterator[Event]:
    """Simulate events ``first_event .. first_event + n_events - 1``, one at a time.

    Raises:
        InputError: for an unknown source or out-of-range values (before any event).
    """
    _check_inputs(source, n_events, seed, pileup, first_event, noise)
    sim = Simulator(config, _DEFAULT_PYTHIA)

    def _gen() -> Iterator[Event]:
        for number in range(first_event, first_event + n_events):
            yield sim.event(source, number, seed, pileup, noise, gun)

    return _gen()


def run_simulate(source: str, n_events: int, seed: int, out: str | Path, pileup: float = 0.0,
                 first_event: int = 0, noise: float = 0.0, progress: bool = True,
                 gun: GunConfig | None = None, config: SimConfig | None = None) -> list[Path]:
    """Simulate events and write them as TrackML CSV files into ``out``.

    A failing event is reported on stderr and skipped; the others are still written.

    Returns:
        the prefixes of the written events.

    Raises:
        InputError: for bad inputs, or at the end naming the events that failed.
    """
    _check_inputs(source, n_events, seed, pileup, first_event, noise)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output directory ({exc.strerror})", out) from None
    sim = Simulator(config, _DEFAULT_PYTHIA)
    numbers = range(first_event, first_event + n_events)
    if progress and n_events > 1:
        numbers = tqdm(numbers, desc=f"simulate {source}", unit="event", file=sys.stderr)
    written, failed, n_hits = [], [], []
    for number in numbers:
        try:
            ev = sim.event(source, number, seed, pileup, noise, gun)
        except Exception as exc:  # one bad event must not stop the run
            print(f"error: event {number} failed: {exc.__class__.__name__}: {exc}",
                  file=sys.stderr)
            failed.append(number)
            continue
        written.append(write_trackml(ev, out))
        n_hits.append(ev.num_hits)
    mean = float(np.mean(n_hits)) if n_hits else 0.0
    print(f"wrote {len(written)} {source} events to {out} (pileup {pileup:g}, "
          f"mean {mean:.0f} spacepoints per event)")
    if failed:
        raise InputError(f"{len(failed)} event(s) failed to simulate: "
                         f"{', '.join(event_name(n) for n in failed)}")
    return written


__all__ = ["HNL_ID", "SOURCES", "GunConfig", "HNLConfig", "SimConfig", "Simulator",
           "run_simulate", "simulate_event", "simulate_events"]
