"""The reconstruction chain in one ACTS sequencer: the CKF baseline and our finder(s), fitted
by ACTS, on the same events.

Per event, in this order (each block ends with a mark, see :mod:`exatrkx.acts.ledger`)::

    read        EventReader (TrackML files -> measurements), measurement subset
    ckf_find    pixel spacepoints -> grid-triplet seeds -> starting parameters -> CKF
                -> greedy ambiguity resolution
    ckf_select  the common selection
    spacepoints spacepoints of every volume (one per measurement; strips at the strip centre)
    <n>_find    our finder n: spacepoints -> runner (any option) -> proto-tracks
    <n>_fit     seeds of the proto-tracks -> starting parameters -> Kalman fit
    <n>_select  the common selection
    collect     tracks to numpy, scored against the truth (untimed)

The CKF is configured from ACTS' building blocks with ACTS' generic-detector settings
(:mod:`exatrkx.acts.settings`); what ACTS' ``addSeeding``/``addCKFTracks`` helpers add
besides (truth matchers, seed bookkeeping, writers) is left out, so its time is the
finding's own. Our proto-tracks get their starting parameters the "hybrid" way: ACTS'
``ProtoTracksToParameters`` picks three spacepoints of each (its seed), and
``TrackParamsEstimationAlgorithm`` estimates the parameters with the CKF's starting
covariance (``ProtoTracksToParameters`` alone fixes a covariance too small for the fit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import acts
import acts.examples
import numpy as np
from acts.examples.reconstruction import (
    SeedFilterConfigArg,
    SeedFinderConfigArg,
    SeedFinderOptionsArg,
    SeedingAlgorithmConfigArg,
    SpacePointGridConfigArg,
    TrackSelectorConfig,
    addGridTripletSeeding,
    addTrackSelection,
    trackSelectorDefaultKWArgs,
)

from exatrkx.acts.detector import Detector, surface_frames
from exatrkx.acts.finder import GnnTrackFinder, LabelRunner
from exatrkx.acts.ledger import EventLedger
from exatrkx.acts.reader import (
    MEASUREMENT_SUBSET,
    MEASUREMENTS,
    EventReader,
    MeasurementSubsetMaker,
)
from exatrkx.acts.settings import (
    AMBIGUITY,
    CKF,
    COMMON_SELECTION,
    INITIAL_SIGMAS,
    KALMAN,
    SEED_FINDER,
    SEEDING_LAYERS,
    VOLUMES,
    TrackSelection,
)
from exatrkx.errors import ExatrkxError

u = acts.UnitConstants
#: The CKF's name in results.
CKF_NAME = "ckf"


@dataclass
class FittedTracks:
    """One finder's selected tracks of one event.

    Attributes:
        measurements: per track, the indices of the measurements it holds (its outliers
            and holes not included).
        params: ``[T, 6]`` bound parameters at the perigee of the origin (loc0, loc1, phi,
            theta, q/p, t); NaN for a track without them.
        chi2, ndf: of each track's fit.
    """

    measurements: list[np.ndarray]
    params: np.ndarray
    chi2: np.ndarray
    ndf: np.ndarray


@dataclass
class FinderOutputs:
    """Whiteboard names of one finder: its selected tracks and the containers its counters
    come from (``counter -> (name, kind)``, kind ``tracks``, ``prototracks`` or ``seeds``)."""

    name: str
    selected: str
    counters: dict[str, tuple[str, str]] = field(default_factory=dict)


def _selector(selection: TrackSelection) -> Any:
    """ACTS' ``TrackSelector.Config`` of a :class:`TrackSelection`."""
    c = TrackSelectorConfig(
        pt=(None if selection.pt_min_gev is None else selection.pt_min_gev * u.GeV, None),
        absEta=(None, selection.abs_eta_max),
        loc0=((None, None) if selection.loc0_mm is None
              else (selection.loc0_mm[0] * u.mm, selection.loc0_mm[1] * u.mm)),
        nMeasurementsMin=selection.min_measurements, maxHoles=selection.max_holes,
        maxOutliers=selection.max_outliers)
    return c


def _initial_sigmas() -> dict[str, Any]:
    s = INITIAL_SIGMAS
    return {"initialSigmas": [s.loc0_mm * u.mm, s.loc1_mm * u.mm, s.phi_deg * u.degree,
                              s.theta_deg * u.degree, s.q_over_p_per_gev * u.e / u.GeV,
                              s.time_ns * u.ns],
            "initialSigmaQoverPt": s.q_over_pt_per_gev * u.e / u.GeV,
            "initialSigmaPtRel": s.pt_rel,
            "initialVarInflation": list(s.var_inflation)}


class Mark(acts.examples.IAlgorithm):
    """Ends the block ``name`` of the current event (a time stamp in the ledger)."""

    def __init__(self, name: str, ledger: EventLedger) -> None:
        super().__init__(f"ExatrkxMark_{name}", acts.logging.WARNING)
        self.block = name
        self.ledger = ledger

    def execute(self, ctx: Any) -> Any:
        self.ledger.state(int(ctx.eventNumber)).mark(self.block)
        return acts.examples.ProcessCode.SUCCESS


def add_spacepoints(s: Any, detector: Detector, output: str,
                    selection: Sequence[Any], level: Any) -> str:
    """ACTS' spacepoint maker on the modules of ``selection`` (``GeometryIdentifier``s)."""
    s.addAlgorithm(acts.examples.SpacePointMaker(
        level=level, inputMeasurements=MEASUREMENT_SUBSET, outputSpacePoints=output,
        trackingGeometry=detector.tracking_geometry, geometrySelection=list(selection)))
    return output


def add_ckf(s: Any, detector: Detector, ledger: EventLedger, level: Any) -> FinderOutputs:
    """Blocks ``ckf_find`` and ``ckf_select``: ACTS' seeding on the pixels, the CKF and
    greedy ambiguity resolution with ACTS' generic-detector settings, then the common
    selection."""
    tg, field_ = detector.tracking_geometry, detector.field
    sf = SEED_FINDER
    spacepoints = add_spacepoints(s, detector, "ckf_spacepoints",
                                  [acts.GeometryIdentifier(volume=v, layer=lay)
                                   for v, lay in SEEDING_LAYERS], level)
    seeds = addGridTripletSeeding(
        s, spacepoints, SeedingAlgorithmConfigArg(),
        SeedFinderConfigArg(
            r=(None, sf.r_max_mm * u.mm),
            deltaR=(sf.delta_r_mm[0] * u.mm, sf.delta_r_mm[1] * u.mm),
            collisionRegion=(sf.collision_region_mm[0] * u.mm, sf.collision_region_mm[1] * u.mm),
            z=(sf.z_mm[0] * u.mm, sf.z_mm[1] * u.mm),
            maxSeedsPerSpM=sf.max_seeds_per_middle_sp, sigmaScattering=sf.sigma_scattering,
            radLengthPerSeed=sf.rad_length_per_seed, minPt=sf.min_pt_gev * u.GeV,
            impactMax=sf.impact_max_mm * u.mm),
        SeedFinderOptionsArg(bFieldInZ=sf.b_field_t * u.T,
                             beamPos=(sf.beam_position_mm[0] * u.mm,
                                      sf.beam_position_mm[1] * u.mm)),
        SeedFilterConfigArg(), SpacePointGridConfigArg(), level, outputSeeds="ckf_seeds")
    s.addAlgorithm(acts.examples.TrackParamsEstimationAlgorithm(
        level=level, inputSeeds=seeds, outputTrackParameters="ckf_parameters",
        outputSeeds="ckf_estimated_seeds", trackingGeometry=tg, magneticField=field_,
        particleHypothesis=acts.ParticleHypothesis.pion, **_initial_sigmas()))
    s.addAlgorithm(acts.examples.TrackFindingAlgorithm(
        level=level,
        measurementSelectorCfg=acts.MeasurementSelector.Config([(
            acts.GeometryIdentifier(),
            ([], [CKF.chi2_cut_measurement], [CKF.chi2_cut_outlier],
             [CKF.measurements_per_surface]))]),
        inputMeasurements=MEASUREMENT_SUBSET, inputInitialTrackParameters="ckf_parameters",
        inputSeeds="ckf_estimated_seeds", outputTracks="ckf_tracks",
        findTracks=acts.examples.TrackFindingAlgorithm.makeTrackFinderFunction(
            tg, field_, level),
        findTracksBrem=acts.examples.TrackFindingAlgorithm.makeBremTrackFinderFunction(
            tg, field_, level),
        trackingGeometry=tg, magneticField=field_,
        trackSelectorCfg=acts.TrackSelector.Config(
            **trackSelectorDefaultKWArgs(_selector(CKF.selection))),
        twoWay=True, reverseSearch=False, seedDeduplication=CKF.seed_deduplication,
        stayOnSeed=CKF.stay_on_seed))
    s.addAlgorithm(acts.examples.GreedyAmbiguityResolutionAlgorithm(
        level=level, inputTracks="ckf_tracks", outputTracks="ckf_ambi_tracks",
        maximumSharedHits=AMBIGUITY.max_shared_hits, nMeasurementsMin=AMBIGUITY.min_measurements,
        maximumIterations=AMBIGUITY.max_iterations))
    s.addAlgorithm(Mark("ckf_find", ledger))
    addTrackSelection(s, _selector(COMMON_SELECTION), inputTracks="ckf_ambi_tracks",
                      outputTracks="ckf_selected", logLevel=level)
    s.addAlgorithm(Mark("ckf_select", ledger))
    return FinderOutputs(CKF_NAME, "ckf_selected", {
        "seeds": ("ckf_estimated_seeds", "seeds"), "found": ("ckf_tracks", "tracks"),
        "resolved": ("ckf_ambi_tracks", "tracks")})


def kalman_fitter(detector: Detector, level: Any) -> Any:
    """ACTS' Kalman fitter with the settings of :data:`~exatrkx.acts.settings.KALMAN`."""
    k = KALMAN
    return acts.examples.makeKalmanFitterFunction(
        detector.tracking_geometry, detector.field, multipleScattering=k.multiple_scattering,
        energyLoss=k.energy_loss,
        reverseFilteringMomThreshold=k.reverse_filtering_momentum_gev * u.GeV,
        reverseFilteringCovarianceScaling=k.reverse_filtering_covariance_scaling,
        freeToBoundCorrection=acts.examples.FreeToBoundCorrection(False), chi2Cut=k.chi2_cut,
        useJosephFormulation=False, level=level)


def add_gnn(s: Any, detector: Detector, ledger: EventLedger, name: str, runner: LabelRunner,
            spacepoints: str, level: Any) -> tuple[FinderOutputs, GnnTrackFinder]:
    """Blocks ``<name>_find``, ``<name>_fit`` and ``<name>_select``: our finder through
    ``runner``, starting parameters, the Kalman fit and the common selection (whiteboard
    names prefixed with ``name``, so several finders share a sequencer)."""
    tg, field_ = detector.tracking_geometry, detector.field
    finder = GnnTrackFinder(name, runner, ledger, spacepoints=spacepoints,
                            prototracks=f"{name}_prototracks")
    s.addAlgorithm(finder)
    s.addAlgorithm(Mark(f"{name}_find", ledger))
    s.addAlgorithm(acts.examples.ProtoTracksToParameters(
        level=level, geometry=tg, magneticField=field_, inputProtoTracks=f"{name}_prototracks",
        inputSpacePoints=spacepoints, outputParameters=f"{name}_unused_parameters",
        outputProtoTracks=f"{name}_prototracks_with_seed", outputSeeds=f"{name}_seeds_all"))
    s.addAlgorithm(acts.examples.TrackParamsEstimationAlgorithm(
        level=level, inputSeeds=f"{name}_seeds_all",
        inputProtoTracks=f"{name}_prototracks_with_seed",
        outputTrackParameters=f"{name}_parameters", outputSeeds=f"{name}_seeds",
        outputProtoTracks=f"{name}_prototracks_seeded", trackingGeometry=tg,
        magneticField=field_, particleHypothesis=acts.ParticleHypothesis.pion,
        **_initial_sigmas()))
    s.addAlgorithm(acts.examples.TrackFittingAlgorithm(
        level=level, inputMeasurements=MEASUREMENTS,
        inputProtoTracks=f"{name}_prototracks_seeded",
        inputInitialTrackParameters=f"{name}_parameters", inputClusters="",
        outputTracks=f"{name}_fitted", pickTrack=-1, fit=kalman_fitter(detector, level),
        calibrator=acts.examples.makePassThroughCalibrator(),
        referenceSurface=acts.Surface.createPerigee(acts.Vector3(0.0, 0.0, 0.0))))
    s.addAlgorithm(Mark(f"{name}_fit", ledger))
    addTrackSelection(s, _selector(COMMON_SELECTION), inputTracks=f"{name}_fitted",
                      outputTracks=f"{name}_selected", logLevel=level)
    s.addAlgorithm(Mark(f"{name}_select", ledger))
    return FinderOutputs(name, f"{name}_selected", {
        "seeded": (f"{name}_prototracks_seeded", "prototracks"),
        "fitted": (f"{name}_fitted", "tracks")}), finder


def fitted_tracks(container: Any) -> FittedTracks:
    """A ``ConstTrackContainer`` as numpy: measurement indices, parameters, chi2, ndf."""
    n = len(container)
    params = np.full((n, 6), np.nan)
    chi2, ndf = np.zeros(n), np.zeros(n, dtype=np.int64)
    measurements = []
    from_link = acts.examples.IndexSourceLink.fromSourceLink
    for i, track in enumerate(container):
        if track.hasReferenceSurface:
            params[i] = np.asarray(track.parameters, dtype=np.float64)[:6]
        chi2[i], ndf[i] = track.chi2, track.nDoF
        # trackStates needs forward links (a fitted track has none): walk them reversed
        measurements.append(np.fromiter(
            (from_link(ts.uncalibratedSourceLink).index() for ts in track.trackStatesReversed
             if ts.typeFlags.isMeasurement and ts.hasUncalibratedSourceLink),
            dtype=np.int64))
    return FittedTracks(measurements, params, chi2, ndf)


#: ``(ledger state, {finder: (tracks, counters)})`` -> None, called once per finished event.
Collect = Callable[[Any, dict[str, tuple[FittedTracks, dict[str, int]]]], None]


class Collector(acts.examples.IAlgorithm):
    """Last algorithm: every finder's selected tracks and counters to numpy, handed to
    ``collect``; the event is then finished in the ledger (or failed, when ``collect``
    raises)."""

    def __init__(self, ledger: EventLedger, finders: Sequence[FinderOutputs],
                 collect: Collect) -> None:
        super().__init__("ExatrkxCollector", acts.logging.WARNING)
        self.ledger = ledger
        self.collect = collect
        ex = acts.examples
        types = {"tracks": ex.ConstTrackContainer, "prototracks": ex.ProtoTrackContainer,
                 "seeds": acts.SeedContainer}
        self._handles: dict[str, tuple[Any, dict[str, Any]]] = {}
        for f in finders:
            selected = ex.ReadDataHandle(self, ex.ConstTrackContainer, f"{f.name}_Selected")
            selected.initialize(f.selected)
            counters = {}
            for counter, (wb, kind) in f.counters.items():
                handle = ex.ReadDataHandle(self, types[kind], f"{f.name}_{counter}")
                handle.initialize(wb)
                counters[counter] = handle
            self._handles[f.name] = (selected, counters)

    def execute(self, ctx: Any) -> Any:
        number = int(ctx.eventNumber)
        state = self.ledger.state(number)
        store = ctx.eventStore
        try:
            out = {}
            for name, (selected, counters) in self._handles.items():
                tracks = fitted_tracks(selected(store))
                out[name] = (tracks, {c: len(h(store)) for c, h in counters.items()})
            self.collect(state, out)
        except ExatrkxError as exc:
            self.ledger.fail(number, exc)
            return acts.examples.ProcessCode.SKIP
        except Exception as exc:  # a scoring bug must not end the run
            self.ledger.fail(number, ExatrkxError(
                f"scoring the tracks failed ({type(exc).__name__}: {exc})"))
            return acts.examples.ProcessCode.SKIP
        self.ledger.finish(number)
        return acts.examples.ProcessCode.SUCCESS


def build_sequencer(detector: Detector, ledger: EventLedger,
                    gnn_runners: dict[str, LabelRunner], ckf: bool, collect: Collect,
                    output_dir: str, level: Any = acts.logging.ERROR
                    ) -> tuple[Any, list[GnnTrackFinder]]:
    """One sequencer over the ledger's events: reading, the CKF (when ``ckf``), one of our
    finders per runner, collection.

    Args:
        detector: the generic detector.
        ledger: the events.
        gnn_runners: finder name -> its runner (any option).
        ckf: run the CKF baseline.
        collect: called with every finished event's tracks (see :data:`Collect`).
        output_dir: ACTS' output folder (its ``timing.csv``).
        level: log level of ACTS' algorithms (ERROR: the per-track warnings of failed seeds
            and fits would flood the log; the counters replace them).

    Returns:
        The sequencer and our finder algorithms.
    """
    s = acts.examples.Sequencer(events=len(ledger.sources), numThreads=1,
                                logLevel=acts.logging.WARNING, outputDir=output_dir,
                                trackFpes=False)
    s.addAlgorithm(EventReader(ledger, surface_frames(detector)))
    s.addAlgorithm(MeasurementSubsetMaker())
    s.addAlgorithm(Mark("read", ledger))
    outputs = []
    if ckf:
        outputs.append(add_ckf(s, detector, ledger, level))
    finders = []
    if gnn_runners:
        spacepoints = add_spacepoints(s, detector, "spacepoints",
                                      [acts.GeometryIdentifier(volume=v) for v in VOLUMES],
                                      level)
        s.addAlgorithm(Mark("spacepoints", ledger))
        for name, runner in gnn_runners.items():
            names, finder = add_gnn(s, detector, ledger, name, runner, spacepoints, level)
            outputs.append(names)
            finders.append(finder)
    s.addAlgorithm(Collector(ledger, outputs, collect))
    return s, finders
