"""Event sources and the detector simulation: Pythia 8 (or a particle gun), then ACTS.

Sources (``source=``):

- ``hnl``: Pythia 8 pp -> W -> l N, the heavy neutral lepton N decaying at a displaced vertex
  (see :mod:`exatrkx.sim.pythia`), with the full underlying event: the sample of the original
  study;
- ``ttbar``: Pythia 8 top-quark pairs, the field's standard busy event;
- ``minbias``: one Pythia 8 non-diffractive (SoftQCD) interaction;
- ``gun``: a particle gun (:class:`exatrkx.sim.particles.GunConfig`).

Any source can get ``pileup`` extra minimum-bias interactions (Poisson mean MU), each at its
own vertex in a Gaussian luminous region (:attr:`SimConfig.beamspot_z`: 50 mm along z).

Detector simulation (:mod:`exatrkx.sim.fatras`): ACTS' Fatras in the generic detector with a
2 T field (multiple scattering, energy loss, bremsstrahlung, photon conversions), smearing
digitization with each volume's resolution, one spacepoint per measurement in every volume
(strips give 2D points at the strip centre). Generator particles produced outside the world
volume are dropped and counted. Noise hits (``particle_id`` 0), a fraction ``noise`` of the
real hits, are spread uniformly over the sensitive area.

What is simulated (:class:`SimConfig`): by default every source keeps soft particles (Fatras
down to 50 MeV, instead of its own 0.5 GeV default that drops the loopers and most of the
pileup) and neutral ones; ``hnl`` without pileup is made as the shared real HNL sample was
(Fatras' 0.5 GeV threshold, charged particles within ``|eta| < 4``), so that the two can be
compared hit for hit. Every setting can be given explicitly.

Output tables (TrackML columns):

- ``particle_id``: ACTS' barcode packed into an int64 (:mod:`exatrkx.sim.particles`); the
  hard interaction is vertex primary 1, pileup 2, 3, ...; 0 marks noise.
- ``hit_id`` runs 1..N in random order across the event, but **within each particle increasing
  hit_id is path order** (loopers included); the hits table is sorted by hit_id.
- ``volume_id``, ``layer_id``, ``module_id``: the fields of ACTS' geometry id.
- truth ``tx, ty, tz``: true crossing position; ``tpx, tpy, tpz``: momentum arriving there.
- truth ``weight``: ``w_pt * w_order`` normalised to sum 1 over the event, where
  ``w_pt = 0.2 + 0.8 * clip((pT - 0.5) / 2.5, 0, 1)`` (pT at production, GeV) and
  ``w_order`` = 3 for a particle's first and last hit, 2 for the second and second-to-last,
  1 otherwise; particles with fewer than 4 hits and noise weigh 0.
- particles: every simulated particle, Fatras' secondaries included (``nhits`` may be 0), plus
  the HNL itself (q = 0).

Event ``i`` of a run depends only on ``(seed, i)``, so runs can be split and resumed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd
from tqdm import tqdm

from exatrkx.errors import InputError
from exatrkx.io import Event, write_trackml
from exatrkx.io.writers import event_name
from exatrkx.sim.fatras import RawEvent, simulate_batch
from exatrkx.sim.geometry import Detector, split_geometry_id
from exatrkx.sim.particles import (
    PARTICLE_DTYPE,
    GunConfig,
    assign_secondary_vertices,
    empty_particles,
    gun_particles,
    pack_barcode,
)
from exatrkx.sim.pythia import (
    MINBIAS_SETTINGS,
    TTBAR_SETTINGS,
    HNLConfig,
    PythiaCache,
    generate,
    pythia_seed,
    record_particles,
)

Source = Literal["hnl", "ttbar", "minbias", "gun"]
SOURCES: tuple[Source, ...] = get_args(Source)


@dataclass(frozen=True)
class SimConfig:
    """Simulation settings.

    Attributes:
        min_momentum: Fatras' momentum threshold, GeV (None: 0.5 for ``hnl`` without pileup,
            as the shared sample; else 0.05, which keeps loopers and soft pileup).
        neutral: simulate neutral particles too (None: not for ``hnl`` without pileup).
        max_eta: simulate generator particles inside this |pseudorapidity| (None: 4 for
            ``hnl`` without pileup, else no cut).
        beamspot_xy: transverse size of the luminous region (Gaussian sigma), mm.
        beamspot_z: its length along z (Gaussian sigma), mm.
        hnl: the HNL signal model.
        gun: the particle gun.
        batch_events: events per ACTS run (a failing run is retried event by event).
    """

    min_momentum: float | None = None
    neutral: bool | None = None
    max_eta: float | None = None
    beamspot_xy: float = 0.0125
    beamspot_z: float = 50.0
    hnl: HNLConfig = field(default_factory=HNLConfig)
    gun: GunConfig = field(default_factory=GunConfig)
    batch_events: int = 25

    def resolved(self, source: Source, pileup: float) -> SimConfig:
        """The settings with every None filled in for this source and pileup."""
        like_shared = source == "hnl" and pileup == 0
        return replace(
            self,
            min_momentum=(self.min_momentum if self.min_momentum is not None
                          else 0.5 if like_shared else 0.05),
            neutral=self.neutral if self.neutral is not None else not like_shared,
            max_eta=(self.max_eta if self.max_eta is not None
                     else 4.0 if like_shared else math.inf))


@dataclass
class SimStats:
    """Counts over the events a :class:`Simulator` made."""

    events: int = 0
    interactions: int = 0
    generated: int = 0
    outside_world: int = 0
    spacepoints: int = 0
    failed: list[int] = field(default_factory=list)


@dataclass
class _Generated:
    particles: np.ndarray
    extras: np.ndarray


class Simulator:
    """Makes events of one source; holds the detector and the initialised Pythia instances.

    Args:
        source: one of :data:`SOURCES`.
        seed: run seed (event ``n`` depends only on ``(seed, n)``).
        pileup: mean number of extra minimum-bias interactions.
        noise: noise hits as a fraction of the real hits.
        config: simulation settings.
        detector: a detector to reuse (building one takes about a second).

    Raises:
        InputError: bad source or values.
    """

    def __init__(self, source: str, seed: int = 1, pileup: float = 0.0, noise: float = 0.0,
                 config: SimConfig | None = None, detector: Detector | None = None) -> None:
        check_inputs(source, 1, seed, pileup, 0, noise)
        self.source: Source = source  # type: ignore[assignment]
        self.seed = seed
        self.pileup = pileup
        self.noise = noise
        self.config = (config or SimConfig()).resolved(self.source, pileup)
        if self.config.min_momentum is not None and not self.config.min_momentum > 0:
            raise InputError(f"minimum momentum must be positive, got "
                             f"{self.config.min_momentum}")
        self.detector = detector or Detector()
        self.pythia = PythiaCache()
        self.stats = SimStats()

    # ------------------------------------------------------------------ generation

    def _vertex(self, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        return rng.normal(0.0, [c.beamspot_xy, c.beamspot_xy, c.beamspot_z])

    def _pythia(self, settings: tuple[str, ...], vp: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        pythia = self.pythia.get(settings)
        generate(pythia, pythia_seed(rng))
        parts, extras = record_particles(pythia.event, vp, bool(self.config.neutral))
        assign_secondary_vertices(parts)
        v = self._vertex(rng)
        for arr in (parts, extras):
            arr["x"] += v[0]
            arr["y"] += v[1]
            arr["z"] += v[2]
        return parts, extras

    def generate(self, number: int) -> _Generated:
        """The generator-level particles of event ``number``, inside the world volume and the
        configured acceptance."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, number]))
        parts, extras = [], []
        if self.source == "gun":
            parts.append(gun_particles(rng, self.config.gun))
        else:
            settings = {"hnl": self.config.hnl.settings(), "ttbar": TTBAR_SETTINGS,
                        "minbias": MINBIAS_SETTINGS}[self.source]
            p, e = self._pythia(settings, 1, rng)
            parts.append(p)
            extras.append(e)
        n_pileup = int(rng.poisson(self.pileup)) if self.pileup > 0 else 0
        for j in range(n_pileup):
            p, e = self._pythia(MINBIAS_SETTINGS, j + 2, rng)
            parts.append(p)
            extras.append(e)
        p = np.concatenate(parts) if parts else empty_particles()
        r_max, half_z = self.detector.world
        inside = (np.hypot(p["x"], p["y"]) < r_max) & (np.abs(p["z"]) < half_z)
        pt = np.hypot(p["px"], p["py"])
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(p["pz"] / pt)
        accepted = np.abs(eta) < float(self.config.max_eta or math.inf)
        self.stats.interactions += 1 + n_pileup
        self.stats.generated += int((inside & accepted).sum())
        self.stats.outside_world += int((~inside).sum())
        return _Generated(p[inside & accepted],
                          np.concatenate(extras) if extras else empty_particles())

    # ------------------------------------------------------------------ simulation

    def events(self, numbers: Sequence[int],
               on_event: Callable[[int], None] | None = None) -> Iterator[Event]:
        """Simulate the events ``numbers`` (consecutive), in batches; a failing event is
        skipped and listed in ``stats.failed`` (the others are still made).

        Args:
            numbers: consecutive event numbers.
            on_event: called with each number once it is done (made or failed).
        """
        size = max(1, self.config.batch_events if self.pileup < 10 else 1)
        for start in range(0, len(numbers), size):
            chunk = list(numbers[start:start + size])
            generated: dict[int, _Generated] = {}
            for n in chunk:
                try:
                    generated[n] = self.generate(n)
                except RuntimeError as exc:  # Pythia gave up on this event
                    self._fail(n, exc)
            for batch in _consecutive(sorted(generated)):
                yield from self._simulate(batch, generated, on_event)
            for n in chunk:
                if n not in generated and on_event is not None:
                    on_event(n)

    def _simulate(self, batch: list[int], generated: dict[int, _Generated],
                  on_event: Callable[[int], None] | None) -> Iterator[Event]:
        particles = {n: generated[n].particles for n in batch}
        try:
            raw = simulate_batch(self.detector, particles, self.seed,
                                 float(self.config.min_momentum or 0.0))
        except (RuntimeError, ValueError) as exc:  # ACTS failed on one of the events
            if len(batch) == 1:
                self._fail(batch[0], exc)
                if on_event is not None:
                    on_event(batch[0])
                return
            for n in batch:  # isolate the event that failed
                yield from self._simulate([n], generated, on_event)
            return
        for n in batch:
            event = self.assemble(event_name(n), raw[n], generated[n].extras,
                                  np.random.default_rng(
                                      np.random.SeedSequence([self.seed, n, 1])))
            self.stats.events += 1
            self.stats.spacepoints += event.num_hits
            if on_event is not None:
                on_event(n)
            yield event

    def _fail(self, number: int, exc: Exception) -> None:
        print(f"error: event {number} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        self.stats.failed.append(number)

    def assemble(self, name: str, raw: RawEvent, extras: np.ndarray,
                 rng: np.random.Generator) -> Event:
        """The TrackML tables of one simulated event (see the module docstring)."""
        n_real = len(raw.xyz)
        n_noise = round(self.noise * n_real)
        noise_gid, noise_xyz = self.detector.random_points(n_noise, rng)
        gid = np.concatenate([raw.geometry_id, noise_gid])
        xyz = np.concatenate([raw.xyz, noise_xyz])
        row = np.concatenate([raw.particle_row, np.full(n_noise, -1, np.int64)])
        path = np.concatenate([raw.path_index, np.zeros(n_noise, np.int64)])
        n_hits = n_real + n_noise
        # hit ids: random across the event, increasing along each particle's path
        ids = rng.permutation(n_hits).astype(np.int64) + 1
        by_path = np.lexsort((np.arange(n_hits), path, row))
        by_id = np.lexsort((ids, row))
        real = row >= 0
        ids_sorted = ids.copy()
        ids_sorted[by_path] = ids[by_id]
        ids = np.where(real, ids_sorted, ids)
        pid = np.where(real, raw.particle_id[np.maximum(row, 0)], 0)
        pt0 = np.hypot(raw.momentum[:, 0], raw.momentum[:, 1])
        weight = np.zeros(n_hits)
        order = np.lexsort((path, row))
        order = order[row[order] >= 0]
        weight[order] = hit_weights(row[order], pt0[row[order]])
        if weight.sum() > 0:
            weight /= weight.sum()
        volume, layer, module = split_geometry_id(gid)
        true_pos = np.concatenate([raw.true_pos, noise_xyz])
        true_mom = np.concatenate([raw.true_mom, np.zeros((n_noise, 3))])
        hits = pd.DataFrame({"hit_id": ids, "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                             "volume_id": volume, "layer_id": layer, "module_id": module})
        truth = pd.DataFrame({"hit_id": ids, "particle_id": pid, "tx": true_pos[:, 0],
                              "ty": true_pos[:, 1], "tz": true_pos[:, 2],
                              "tpx": true_mom[:, 0], "tpy": true_mom[:, 1],
                              "tpz": true_mom[:, 2], "weight": weight})
        sort = np.argsort(ids, kind="stable")
        hits = hits.iloc[sort].reset_index(drop=True)
        truth = truth.iloc[sort].reset_index(drop=True)
        nhits = np.bincount(row[real], minlength=len(raw.particle_id)).astype(np.int64)
        particles = pd.DataFrame({
            "particle_id": raw.particle_id, "particle_type": raw.pdg,
            "vx": raw.vertex[:, 0], "vy": raw.vertex[:, 1], "vz": raw.vertex[:, 2],
            "px": raw.momentum[:, 0], "py": raw.momentum[:, 1], "pz": raw.momentum[:, 2],
            "q": np.rint(raw.charge).astype(np.int64), "nhits": nhits})
        if len(extras):
            particles = pd.concat([particles, pd.DataFrame({
                "particle_id": pack_barcode(extras["vp"], extras["vs"], extras["part"]),
                "particle_type": extras["pdg"], "vx": extras["x"], "vy": extras["y"],
                "vz": extras["z"], "px": extras["px"], "py": extras["py"],
                "pz": extras["pz"], "q": 0, "nhits": 0})], ignore_index=True)
            particles = particles.drop_duplicates("particle_id").reset_index(drop=True)
        return Event.from_tables(name, hits, particles, truth)


def _consecutive(numbers: list[int]) -> Iterator[list[int]]:
    """Runs of consecutive numbers."""
    run: list[int] = []
    for n in numbers:
        if run and n != run[-1] + 1:
            yield run
            run = []
        run.append(n)
    if run:
        yield run


def hit_weights(part: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """TrackML-like hit weights (unnormalised) for hits grouped by particle in path order.

    Args:
        part: particle of each hit, hits of one particle together, in path order.
        pt: transverse momentum at production of each hit's particle, GeV.
    """
    if len(part) == 0:
        return np.zeros(0)
    start = np.r_[True, part[1:] != part[:-1]]
    first = np.flatnonzero(start)
    counts = np.diff(np.r_[first, len(part)])
    n = np.repeat(counts, counts)
    i = np.arange(len(part)) - np.repeat(first, counts)
    edge = np.minimum(i, n - 1 - i)
    w_order = np.where(edge == 0, 3.0, np.where(edge == 1, 2.0, 1.0))
    w_pt = 0.2 + 0.8 * np.clip((pt - 0.5) / 2.5, 0.0, 1.0)
    return np.where(n >= 4, w_order * w_pt, 0.0)


# ---------------------------------------------------------------------- public API

def check_inputs(source: str, n_events: int, seed: int, pileup: float, first_event: int,
                 noise: float) -> None:
    """Refuse bad simulation arguments with a one-line message.

    Raises:
        InputError: naming the bad value.
    """
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


def simulate_events(source: str, n_events: int, seed: int, pileup: float = 0.0,
                    first_event: int = 0, noise: float = 0.0,
                    config: SimConfig | None = None,
                    detector: Detector | None = None) -> Iterator[Event]:
    """Simulate events ``first_event .. first_event + n_events - 1`` (failed ones skipped,
    with a message on stderr).

    Raises:
        InputError: for an unknown source or out-of-range values (before any event).
    """
    check_inputs(source, n_events, seed, pileup, first_event, noise)
    sim = Simulator(source, seed, pileup, noise, config, detector)
    return sim.events(range(first_event, first_event + n_events))


def run_simulate(source: str, n_events: int, seed: int, out: str | Path, pileup: float = 0.0,
                 first_event: int = 0, noise: float = 0.0, progress: bool = True,
                 config: SimConfig | None = None) -> list[Path]:
    """Simulate events and write them as TrackML CSV files into ``out``.

    A failing event is reported on stderr and skipped; the others are still written.

    Returns:
        the prefixes of the written events.

    Raises:
        InputError: for bad inputs, an unwritable folder, or at the end naming the events
            that failed.
    """
    check_inputs(source, n_events, seed, pileup, first_event, noise)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".exatrkx-write-test-{first_event}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write to the output directory ({exc.strerror})", out) \
            from None
    sim = Simulator(source, seed, pileup, noise, config)
    bar = tqdm(total=n_events, desc=f"simulate {source}", unit="event", file=sys.stderr,
               disable=not progress or n_events < 2, dynamic_ncols=True)
    written = []
    with bar:
        for event in sim.events(range(first_event, first_event + n_events),
                                on_event=lambda _n: bar.update()):
            written.append(write_trackml(event, out))
    st = sim.stats
    mean = st.spacepoints / st.events if st.events else 0.0
    print(f"wrote {st.events} {source} events to {out} (pileup {pileup:g}, mean {mean:.0f} "
          f"spacepoints per event; {st.outside_world} generator particles outside the "
          f"detector dropped)")
    if st.failed:
        raise InputError(f"{len(st.failed)} event(s) failed to simulate: "
                         f"{', '.join(event_name(n) for n in st.failed)}")
    return written


__all__ = ["PARTICLE_DTYPE", "SOURCES", "GunConfig", "HNLConfig", "SimConfig", "SimStats",
           "Simulator", "run_simulate", "simulate_events"]
