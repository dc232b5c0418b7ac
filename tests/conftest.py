"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from exatrkx.io.shared import hnl_events_dir


@pytest.fixture(scope="session")
def shared_hnl_dir() -> Path:
    """The shared real HNL events; tests using it skip when the folder is absent."""
    path = hnl_events_dir()
    if path is None:
        pytest.skip("../shared/data/hnl-lrt-100 is absent")
    return path


# ---------------------------------------------------------------------------- ACTS events

def simulate_gun_events(out: Path, events: int, seed: int, muons: int = 10,
                        displaced_mm: tuple[float, float] | None = None,
                        detector: object = None) -> Path:
    """TrackML events with truth from ACTS in process: a muon gun (pT 1-10 GeV, |eta| < 2.5)
    -> Fatras in the generic detector -> smearing digitization (pitch / sqrt(12)), one hit per
    measurement at its global position, module ids as ACTS' geometry ids, hits shuffled.
    ``displaced_mm`` = (mean, sigma) of a Gaussian transverse production radius (else the
    origin). A few ms per event (plus the detector, when none is given: about a second)."""
    import json
    import math
    from typing import Any

    import acts.examples
    import numpy as np
    import pandas as pd
    from acts.examples.simulation import (
        EtaConfig,
        MomentumConfig,
        ParticleConfig,
        PhiConfig,
        addDigitization,
        addFatras,
        addParticleGun,
    )

    import acts
    from exatrkx.acts.detector import Detector
    from exatrkx.acts.settings import PITCH_MM, SUBDETECTORS

    u = acts.UnitConstants
    out.mkdir(parents=True, exist_ok=True)
    det = detector if isinstance(detector, Detector) else Detector()
    frames = det.frames
    digi = out / "digi.json"
    digi.write_text(json.dumps({
        "acts-geometry-hierarchy-map": {"format-version": 0,
                                        "value-identifier": "digitization-configuration"},
        "entries": [{"volume": v, "value": {"smearing": [
            {"index": i, "mean": 0.0, "stddev": PITCH_MM[s][i] / math.sqrt(12.0),
             "type": "Gauss"} for i in (0, 1)]}} for v, s in SUBDETECTORS.items()]}))

    class Writer(acts.examples.IAlgorithm):
        def __init__(self) -> None:
            super().__init__("TestTrackMLWriter", acts.logging.WARNING)
            ex = acts.examples
            self.meas = ex.ReadDataHandle(self, ex.MeasurementContainer, "M")
            self.meas.initialize("measurements")
            self.mp = ex.ReadDataHandle(self, ex.MeasurementParticlesMap, "MP")
            self.mp.initialize("measurement_particles_map")
            self.parts = ex.ReadDataHandle(self, ex.SimParticleContainer, "P")
            self.parts.initialize("particles_simulated")

        def execute(self, ctx: Any) -> Any:
            store = ctx.eventStore
            meas = list(self.meas(store))
            ids = [(m.geometryId.volume, m.geometryId.layer, m.geometryId.sensitive)
                   for m in meas]
            vol, lay, mod = (np.array([i[k] for i in ids], dtype=np.int64).reshape(-1)
                             for k in range(3))
            loc = np.array([list(m.fullParameters)[:2] for m in meas]).reshape(-1, 2)
            xyz = frames.to_global(frames.rows(vol, lay, mod), loc[:, 0], loc[:, 1])

            def code(b: Any) -> int:
                return ((b.vertexPrimary << 48) | (b.vertexSecondary << 36)
                        | (b.particle << 16) | (b.generation << 8) | b.subParticle)

            pid = np.zeros(len(meas), dtype=np.int64)
            for m, b in self.mp(store):
                pid[m] = code(b)
            n = len(meas)
            order = np.random.default_rng([seed, ctx.eventNumber]).permutation(n)
            hit_id = np.arange(1, n + 1)
            prefix = out / f"event{ctx.eventNumber:09d}"
            pd.DataFrame({"hit_id": hit_id, "x": xyz[order, 0], "y": xyz[order, 1],
                          "z": xyz[order, 2], "volume_id": vol[order],
                          "layer_id": lay[order], "module_id": mod[order]}
                         ).to_csv(f"{prefix}-hits.csv", index=False)
            pd.DataFrame({"hit_id": hit_id, "particle_id": pid[order], "tx": xyz[order, 0],
                          "ty": xyz[order, 1], "tz": xyz[order, 2], "tpx": 0.0, "tpy": 0.0,
                          "tpz": 0.0, "weight": 1.0 / max(n, 1)}
                         ).to_csv(f"{prefix}-truth.csv", index=False)
            nhits = pd.Series(pid).value_counts()
            rows = [(code(p.particleId), int(p.pdg), *list(p.position)[:3],
                     *list(p.momentum)[:3], p.charge, int(nhits.get(code(p.particleId), 0)))
                    for p in self.parts(store)]
            pd.DataFrame(rows, columns=["particle_id", "particle_type", "vx", "vy", "vz", "px",
                                        "py", "pz", "q", "nhits"]
                         ).to_csv(f"{prefix}-particles.csv", index=False)
            return acts.examples.ProcessCode.SUCCESS

    s = acts.examples.Sequencer(events=events, numThreads=1, logLevel=acts.logging.WARNING,
                                trackFpes=False)
    rnd = acts.examples.RandomNumbers(seed=seed)
    vertices = None
    if displaced_mm is not None:
        vertices = acts.examples.GaussianDisplacedVertexPositionGenerator(
            rMean=displaced_mm[0] * u.mm, rStdDev=displaced_mm[1] * u.mm, zMean=0.0,
            zStdDev=30 * u.mm, tMean=0.0, tStdDev=0.0)
    addParticleGun(s, MomentumConfig(1.0 * u.GeV, 10.0 * u.GeV, transverse=True),
                   EtaConfig(-2.5, 2.5, uniform=True), PhiConfig(0.0, 360.0 * u.degree),
                   ParticleConfig(muons, acts.PdgParticle.eMuon, randomizeCharge=True),
                   vtxGen=vertices, rnd=rnd, logLevel=acts.logging.WARNING)
    addFatras(s, det.tracking_geometry, det.field, rnd=rnd, pMin=50 * u.MeV,
              logLevel=acts.logging.WARNING)
    addDigitization(s, det.tracking_geometry, det.field, digiConfigFile=digi, rnd=rnd,
                    logLevel=acts.logging.WARNING)
    s.addAlgorithm(Writer())
    s.run()
    digi.unlink()
    return out


@pytest.fixture(scope="session")
def acts_detector() -> object:
    """ACTS' generic detector with its module frames (built once: about a second)."""
    from exatrkx.acts.detector import Detector

    det = Detector()
    assert len(det.frames) == 18_728
    return det


@pytest.fixture(scope="session")
def acts_events(tmp_path_factory: pytest.TempPathFactory, acts_detector: object) -> Path:
    """Four ACTS-simulated events of 10 prompt muons each (TrackML files with truth)."""
    return simulate_gun_events(tmp_path_factory.mktemp("acts") / "prompt", 4, seed=11,
                               detector=acts_detector)


@pytest.fixture(scope="session")
def displaced_acts_events(tmp_path_factory: pytest.TempPathFactory,
                          acts_detector: object) -> Path:
    """Three ACTS-simulated events of 10 muons produced at r ~ 60 +- 20 mm."""
    return simulate_gun_events(tmp_path_factory.mktemp("acts") / "displaced", 3, seed=12,
                               displaced_mm=(60.0, 20.0), detector=acts_detector)
