"""The chain in one sequencer: the CKF is ACTS' own, a perfect finder's tracks fit well, the
CKF is blind to displaced tracks and our scoring says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exatrkx.acts.app import execute_chain
from exatrkx.acts.chain import add_ckf, fitted_tracks
from exatrkx.acts.evaluate import CONTRACT_KEYS, summarize_finder
from exatrkx.acts.ledger import EventLedger
from exatrkx.acts.settings import INITIAL_SIGMAS, SEED_FINDER, SEEDING_LAYERS
from exatrkx.io import event_sources


def test_our_ckf_is_acts_ckf(tmp_path: Path, acts_detector: Any) -> None:
    """Our CKF block (ACTS' building blocks with ckf_tracks.py's settings, no truth matchers)
    gives exactly the tracks of ACTS' own helpers addSeeding + addCKFTracks +
    addAmbiguityResolution with the same settings, on the same simulated events."""
    import acts
    import acts.examples
    from acts.examples.reconstruction import (
        AmbiguityResolutionConfig,
        CkfConfig,
        SeedFinderConfigArg,
        SeedFinderOptionsArg,
        SeedingAlgorithm,
        TrackSelectorConfig,
        addAmbiguityResolution,
        addCKFTracks,
        addSeeding,
    )
    from acts.examples.simulation import (
        EtaConfig,
        MomentumConfig,
        ParticleConfig,
        ParticleSelectorConfig,
        PhiConfig,
        addDigiParticleSelection,
        addDigitization,
        addFatras,
        addParticleGun,
    )

    from exatrkx.sim.geometry import write_digitization_config

    u = acts.UnitConstants
    det = acts_detector
    digi = write_digitization_config(tmp_path / "digi.json")
    layers = tmp_path / "seeding.json"
    layers.write_text(json.dumps([{"volume": v, "layer": lay} for v, lay in SEEDING_LAYERS]))
    events = 3
    ledger = EventLedger([tmp_path / f"e{i}" for i in range(events)])
    s = acts.examples.Sequencer(events=events, numThreads=1, logLevel=acts.logging.WARNING,
                                trackFpes=False)
    rnd = acts.examples.RandomNumbers(seed=5)
    addParticleGun(s, MomentumConfig(1.0 * u.GeV, 10.0 * u.GeV, transverse=True),
                   EtaConfig(-2.5, 2.5, uniform=True), PhiConfig(0.0, 360.0 * u.degree),
                   ParticleConfig(20, acts.PdgParticle.eMuon, randomizeCharge=True), rnd=rnd,
                   logLevel=acts.logging.WARNING)
    addFatras(s, det.tracking_geometry, det.field, rnd=rnd, logLevel=acts.logging.WARNING)
    addDigitization(s, det.tracking_geometry, det.field, digiConfigFile=digi, rnd=rnd,
                    logLevel=acts.logging.WARNING)
    addDigiParticleSelection(s, ParticleSelectorConfig(pt=(0.5 * u.GeV, None),
                                                       removeNeutral=True),
                             logLevel=acts.logging.WARNING)

    class Begin(acts.examples.IAlgorithm):
        def __init__(self) -> None:
            super().__init__("Begin", acts.logging.WARNING)

        def execute(self, ctx: Any) -> Any:
            ledger.begin(int(ctx.eventNumber))
            return acts.examples.ProcessCode.SUCCESS

    s.addAlgorithm(Begin())
    level = acts.logging.ERROR
    add_ckf(s, det, ledger, level)
    # ACTS' helpers, with the same settings, on their own whiteboard names
    s.addWhiteboardAlias("ref_measurement_subset", "measurement_subset")
    sf, sig = SEED_FINDER, INITIAL_SIGMAS
    addSeeding(
        s, det.tracking_geometry, det.field,
        SeedFinderConfigArg(r=(None, sf.r_max_mm * u.mm),
                            deltaR=(sf.delta_r_mm[0] * u.mm, sf.delta_r_mm[1] * u.mm),
                            collisionRegion=(-250 * u.mm, 250 * u.mm),
                            z=(-2000 * u.mm, 2000 * u.mm), maxSeedsPerSpM=1,
                            sigmaScattering=5, radLengthPerSeed=0.1, minPt=500 * u.MeV,
                            impactMax=3 * u.mm),
        SeedFinderOptionsArg(bFieldInZ=2 * u.T, beamPos=(0.0, 0.0)),
        seedingAlgorithm=SeedingAlgorithm.GridTriplet, geoSelectionConfigFile=layers,
        initialSigmas=[sig.loc0_mm * u.mm, sig.loc1_mm * u.mm, 1 * u.degree, 1 * u.degree,
                       0 * u.e / u.GeV, 1 * u.ns],
        initialSigmaQoverPt=0.1 * u.e / u.GeV, initialSigmaPtRel=0.1,
        initialVarInflation=[1.0] * 6, prefix="ref_", logLevel=level)
    addCKFTracks(s, det.tracking_geometry, det.field,
                 TrackSelectorConfig(pt=(500 * u.MeV, None), absEta=(None, 3.0),
                                     loc0=(-4.0 * u.mm, 4.0 * u.mm), nMeasurementsMin=7,
                                     maxHoles=2, maxOutliers=2),
                 CkfConfig(chi2CutOffMeasurement=15.0, chi2CutOffOutlier=25.0,
                           numMeasurementsCutOff=10, seedDeduplication=True, stayOnSeed=True),
                 writeTrackSummary=False, writePerformance=False, prefix="ref_", logLevel=level)
    addAmbiguityResolution(s, AmbiguityResolutionConfig(maximumSharedHits=3,
                                                        maximumIterations=1000000,
                                                        nMeasurementsMin=7),
                           writeTrackSummary=False, writePerformance=False, prefix="ref_",
                           logLevel=level)
    got: list[tuple[list[list[int]], list[list[int]]]] = []

    class Compare(acts.examples.IAlgorithm):
        def __init__(self) -> None:
            super().__init__("Compare", acts.logging.WARNING)
            ex = acts.examples
            self.ours = ex.ReadDataHandle(self, ex.ConstTrackContainer, "Ours")
            self.ours.initialize("ckf_ambi_tracks")
            self.ref = ex.ReadDataHandle(self, ex.ConstTrackContainer, "Ref")
            self.ref.initialize("ref_ambi_tracks")

        def execute(self, ctx: Any) -> Any:
            ours, ref = (sorted(sorted(m.tolist()) for m in fitted_tracks(
                h(ctx.eventStore)).measurements) for h in (self.ours, self.ref))
            got.append((ours, ref))
            ledger.finish(int(ctx.eventNumber))
            return acts.examples.ProcessCode.SUCCESS

    s.addAlgorithm(Compare())
    s.run()
    assert len(got) == events
    assert sum(len(ours) for ours, _ in got) >= 40  # most of the 60 muons
    for ours, ref in got:
        assert ours == ref


@pytest.fixture(scope="module")
def truth_run(acts_events: Path, displaced_acts_events: Path, truth_runner: Any,
              acts_detector: Any) -> dict[str, dict[str, Any]]:
    """The chain with a perfect finder and the CKF on the prompt and the displaced events."""
    out = {}
    for kind, folder in (("prompt", acts_events), ("displaced", displaced_acts_events)):
        run = execute_chain(event_sources(folder), {"gnn": truth_runner}, True,
                            detector=acts_detector)
        assert not run.ledger.errors and not run.acts_error
        out[kind] = {f: summarize_finder(run.results, f) for f in ("gnn", "ckf")}
    return out


def test_a_perfect_finder_fits_and_scores_perfectly(truth_run: dict) -> None:
    gnn, ckf = truth_run["prompt"]["gnn"], truth_run["prompt"]["ckf"]
    for summary in (gnn, ckf):
        assert set(CONTRACT_KEYS) <= set(summary)
        assert summary["events"] == 4 and summary["timed_events"] == 4
        assert summary["finding_ms_per_event"] > 0
        assert summary["ms_per_event"] >= summary["finding_ms_per_event"]
    # muons of pT 1-10 GeV within |eta| < 2.5: all within the common selection
    assert gnn["track_efficiency"] >= 0.97
    assert gnn["fake_rate"] == 0.0 and gnn["duplicate_rate"] == 0.0
    assert ckf["track_efficiency"] >= 0.9
    assert ckf["fake_rate"] <= 0.05
    counts = gnn["counts"]
    assert counts["selected"] <= counts["fitted"] <= counts["seeded"] <= counts["prototracks"]
    assert counts["fit_failures"] == counts["seeded"] - counts["fitted"]
    assert gnn["fit_failures"] == counts["fit_failures"]
    assert ckf["fit_failures"] is None  # the CKF fits while it finds
    assert ckf["counts"]["selected"] <= ckf["counts"]["resolved"] <= ckf["counts"]["found"]
    # fitted with the detector's resolution: pT to a few %, d0 to tens of um
    for summary in (gnn, ckf):
        assert 0.002 < summary["pt_resolution"] < 0.05
        assert 0.002 < summary["d0_resolution_mm"] < 0.2
        assert 0.5 < summary["chi2_ndf_median"] < 2.0


def test_the_ckf_misses_displaced_tracks(truth_run: dict) -> None:
    """ACTS' generic-detector seeding (impact < 3 mm) and CKF selection (|d0| < 4 mm) find
    few tracks of muons produced at r ~ 60 mm; a perfect finder's tracks fit."""
    gnn, ckf = truth_run["displaced"]["gnn"], truth_run["displaced"]["ckf"]
    assert gnn["displaced"] >= 20 and gnn["displaced"] == ckf["displaced"]
    assert gnn["track_efficiency_displaced"] >= 0.85
    assert ckf["track_efficiency_displaced"] <= 0.5
    assert gnn["d0_resolution_mm"] < 0.5
    radius = gnn["binned"]["radius"]
    assert sum(radius["total"]) == gnn["reconstructable"]


def test_blocks_are_timed_per_event(truth_run: dict) -> None:
    parts = truth_run["prompt"]["gnn"]["ms_parts"]
    assert {"spacepoints", "fit", "features_ms", "labels_ms", "index_ms",
            "prototracks_ms"} <= set(parts)
    assert all(np.isfinite(v) and v >= 0 for v in parts.values())
