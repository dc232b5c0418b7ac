"""ACTS' fast simulation of a batch of generated events: Fatras in the generic detector, then
smearing digitization and spacepoints in every volume, read back from ACTS' event store.

:func:`simulate_batch` runs one ACTS ``Sequencer`` over events whose generator-level
particles are given; it returns, per event, the raw arrays that
:mod:`exatrkx.sim.simulate` turns into TrackML tables. One spacepoint is made per measurement
(pixels give 3D points, strips 2D points at the strip centre along the strip), in the
measurements' order.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import acts
import acts.examples
import acts.examples.json
import numpy as np

from exatrkx.sim.geometry import SUBDETECTORS, Detector, write_digitization_config
from exatrkx.sim.particles import pack_barcode

_U = acts.UnitConstants
_E = acts.examples


@dataclass
class RawEvent:
    """What ACTS made of one event (``S`` spacepoints, ``P`` simulated particles).

    Attributes:
        xyz: float64 ``[S, 3]`` spacepoint positions, mm.
        geometry_id: uint64 ``[S]`` module of each spacepoint.
        particle_row: int64 ``[S]`` row in the particle arrays of the hit's particle (-1: none).
        path_index: int64 ``[S]`` position of the hit along its particle's path.
        true_pos: float64 ``[S, 3]`` true crossing position, mm.
        true_mom: float64 ``[S, 3]`` momentum arriving there, GeV.
        particle_id: int64 ``[P]`` packed barcodes of the simulated particles (secondaries too).
        pdg: int64 ``[P]``; vertex: float64 ``[P, 3]``; momentum: float64 ``[P, 3]`` at
            production; charge: float64 ``[P]``.
        measurements: measurements made (= spacepoints).
        simhits: simulated hits (several may merge into one measurement).
    """

    xyz: np.ndarray
    geometry_id: np.ndarray
    particle_row: np.ndarray
    path_index: np.ndarray
    true_pos: np.ndarray
    true_mom: np.ndarray
    particle_id: np.ndarray
    pdg: np.ndarray
    vertex: np.ndarray
    momentum: np.ndarray
    charge: np.ndarray
    measurements: int = 0
    simhits: int = 0


def to_sim_particles(p: np.ndarray) -> Any:
    """Generator-level particles (:data:`exatrkx.sim.particles.PARTICLE_DTYPE`) as ACTS'
    ``SimParticleContainer`` (a few microseconds per particle)."""
    cont = _E.SimParticleContainer()
    pabs = np.sqrt(p["px"] ** 2 + p["py"] ** 2 + p["pz"] ** 2)
    for k, row in enumerate(p.tolist()):
        vp, vs, part, pdg, q, m, x, y, z, t, px, py, pz = row
        barcode = _E.SimBarcode()
        barcode.vertexPrimary, barcode.vertexSecondary, barcode.particle = vp, vs, part
        particle = _E.SimParticle(barcode, acts.PdgParticle(pdg), q, m)
        particle.fourPosition = acts.Vector4(x, y, z, t)
        a = float(pabs[k]) or 1e-12
        particle.direction = acts.Vector3(px / a, py / a, pz / a)
        particle.absoluteMomentum = a
        cont.insert(particle)
    return cont


class _ParticleSource(acts.examples.IAlgorithm):
    """Writes each event's given particles onto the event store."""

    def __init__(self, particles: Mapping[int, np.ndarray], output: str, level: Any) -> None:
        super().__init__(name="ParticleSource", level=level)
        self.particles = particles
        self.handle = _E.WriteDataHandle(self, _E.SimParticleContainer, "OutputParticles")
        self.handle.initialize(output)

    def execute(self, ctx: Any) -> Any:
        self.handle(ctx, to_sim_particles(self.particles[ctx.eventNumber]))
        return _E.ProcessCode.SUCCESS


class _Collector(acts.examples.IAlgorithm):
    """Reads particles, sim hits, measurements and spacepoints back into numpy arrays."""

    def __init__(self, out: dict[int, RawEvent], level: Any) -> None:
        super().__init__(name="Collector", level=level)
        self.out = out
        self.particles = self._read(_E.SimParticleContainer, "particles_simulated")
        self.hits = self._read(_E.SimHitContainer, "simhits")
        self.measurements = self._read(_E.MeasurementContainer, "measurements")
        self.meas_hits = self._read(_E.MeasurementSimHitsMap, "measurement_simhits_map")
        self.spacepoints = self._read(acts.SpacePointContainer, "spacepoints")

    def _read(self, kind: Any, name: str) -> Any:
        handle = _E.ReadDataHandle(self, kind, f"Input{name}")
        handle.initialize(name)
        return handle

    def execute(self, ctx: Any) -> Any:
        store = ctx.eventStore
        self.out[ctx.eventNumber] = collect(
            self.particles(store), self.hits(store), len(self.measurements(store)),
            self.meas_hits(store), self.spacepoints(store))
        return _E.ProcessCode.SUCCESS


def collect(particles: Any, hits: Any, n_measurements: int, meas_hits: Any,
            spacepoints: Any) -> RawEvent:
    """ACTS' containers of one event -> a :class:`RawEvent` (each container read once: the
    bindings cost microseconds per attribute)."""
    index: dict[Any, int] = {}

    def particle_row(k: int, p: Any) -> tuple[float, ...]:
        b = p.particleId
        index[b] = k
        x, m = p.fourPosition, p.momentum
        return (b.vertexPrimary, b.vertexSecondary, b.particle, b.generation, b.subParticle,
                int(p.pdg), x[0], x[1], x[2], m[0], m[1], m[2], p.charge)

    pa = np.array([particle_row(k, p) for k, p in enumerate(particles)],
                  dtype=np.float64).reshape(-1, 13)
    pid = pack_barcode(*(pa[:, i].astype(np.int64) for i in range(5)))
    get = index.get

    def hit_row(h: Any) -> tuple[float, ...]:
        p4, m4 = h.fourPosition, h.momentum4Before
        return (p4[0], p4[1], p4[2], m4[0], m4[1], m4[2], get(h.particleId, -1), h.index)

    hit_list = list(hits)
    hit_gid = np.fromiter((h.geometryId.value for h in hit_list), dtype=np.uint64,
                          count=len(hit_list))
    ha = np.array([hit_row(h) for h in hit_list], dtype=np.float64).reshape(-1, 8)
    pairs = np.array(list(meas_hits), dtype=np.int64).reshape(-1, 2)
    meas_to_hit = np.full(n_measurements, -1, dtype=np.int64)
    meas_to_hit[pairs[::-1, 0]] = pairs[::-1, 1]  # the first sim hit of each measurement
    from_link = _E.IndexSourceLink.fromSourceLink
    meas = np.fromiter((from_link(next(iter(s.sourceLinks))).index() for s in spacepoints),
                       dtype=np.int64, count=len(spacepoints))
    h = meas_to_hit[meas]
    if (h < 0).any():
        raise RuntimeError("a measurement without a simulated hit")
    xyz = np.stack([spacepoints.x, spacepoints.y, spacepoints.z], axis=1).astype(np.float64)
    return RawEvent(xyz=xyz.reshape(-1, 3), geometry_id=hit_gid[h],
                    particle_row=ha[h, 6].astype(np.int64),
                    path_index=ha[h, 7].astype(np.int64), true_pos=ha[h, 0:3],
                    true_mom=ha[h, 3:6], particle_id=pid, pdg=pa[:, 5].astype(np.int64),
                    vertex=pa[:, 6:9], momentum=pa[:, 9:12], charge=pa[:, 12],
                    measurements=n_measurements, simhits=len(hit_list))


def run_seed(seed: int, salt: int) -> int:
    """A 32-bit seed of ACTS' random numbers for a run (ACTS adds the event number)."""
    return int(np.random.SeedSequence([seed, salt]).generate_state(1, np.uint32)[0])


def simulate_batch(detector: Detector, particles: Mapping[int, np.ndarray], seed: int,
                   min_momentum: float, log_level: Any = acts.logging.WARNING
                   ) -> dict[int, RawEvent]:
    """Fatras, digitization and spacepoints for the events ``particles`` holds.

    Args:
        detector: the detector and field.
        particles: event number -> its generator-level particles; the numbers must be
            consecutive (ACTS numbers events from the first).
        seed: run seed; event ``n`` gets ACTS' random stream for ``(seed, n)``.
        min_momentum: Fatras' momentum threshold, GeV (softer particles are not simulated).
        log_level: ACTS' log level.

    Raises:
        RuntimeError: ACTS failed on an event (the caller isolates it).
    """
    numbers = sorted(particles)
    if not numbers:
        return {}
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise ValueError("event numbers of a batch must be consecutive")
    out: dict[int, RawEvent] = {}
    with tempfile.TemporaryDirectory(prefix="exatrkx-acts-") as tmp:
        # trackFpes off: Pythia and numpy may raise harmless floating-point underflows in the
        # Python algorithms, which the monitor would turn into a failed run
        seq = _E.Sequencer(events=len(numbers), skip=numbers[0], numThreads=1,
                           outputDir=tmp, logLevel=log_level, trackFpes=False)
        seq.addAlgorithm(_ParticleSource(particles, "particles_generated", log_level))
        seq.addAlgorithm(_E.FatrasSimulation(
            level=log_level, inputParticles="particles_generated",
            outputParticles="particles_simulated", outputSimHits="simhits",
            randomNumbers=_E.RandomNumbers(seed=run_seed(seed, 1)),
            trackingGeometry=detector.tracking_geometry, magneticField=detector.field,
            generateHitsOnSensitive=True, emScattering=True, emEnergyLossIonisation=True,
            emEnergyLossRadiation=True, emPhotonConversion=True,
            pMin=min_momentum * _U.GeV))
        digi = _E.DigitizationAlgorithm.Config(
            digitizationConfigs=_E.json.readDigiConfigFromJson(
                str(write_digitization_config(Path(tmp) / "digitization.json"))),
            surfaceByIdentifier=detector.tracking_geometry.geoIdSurfaceMap(),
            randomNumbers=_E.RandomNumbers(seed=run_seed(seed, 2)),
            inputSimHits="simhits", outputMeasurements="measurements",
            outputMeasurementParticlesMap="measurement_particles_map",
            outputMeasurementSimHitsMap="measurement_simhits_map",
            outputParticleMeasurementsMap="particle_measurements_map",
            outputSimHitMeasurementsMap="simhit_measurements_map")
        seq.addAlgorithm(_E.DigitizationAlgorithm(digi, log_level))
        seq.addAlgorithm(_E.SpacePointMaker(
            level=log_level, inputMeasurements="measurement_subset",
            outputSpacePoints="spacepoints", trackingGeometry=detector.tracking_geometry,
            geometrySelection=[acts.GeometryIdentifier(volume=v) for v in SUBDETECTORS]))
        seq.addAlgorithm(_Collector(out, log_level))
        seq.run()
    return out
