"""Every setting of the ACTS chain, with where it comes from (plain numbers, no ``acts``).

Units: mm, GeV, degrees, tesla, ns, as named in each field. The CKF baseline uses ACTS'
own settings for the generic detector, unchanged; they are listed with their sources in
:data:`SOURCES` (the ``chain`` documentation and the study's report print that table):

- seeding (pixel spacepoints, grid triplets), starting parameters, the CKF and its track
  selector: ``Examples/Scripts/Python/ckf_tracks.py`` of acts-project/acts at commit
  64e6463 (``runCKFTracks``; the settings ACTS' own test ``test_ckf_tracks_example`` runs
  on the generic detector);
- greedy ambiguity resolution: ``Examples/Scripts/Python/full_chain_test.py`` (generic
  detector, default ``--ambi-solver greedy``; ckf_tracks.py has no ambiguity step);
- seeding layers: ``Examples/Configs/generic-seeding-config.json``;
- Kalman fitter (our finder's tracks): the defaults of ``addKalmanTracks`` in the wheel's
  ``acts/examples/reconstruction.py``.

Two things of ours, applied to both finders alike: the resolution of a hit read from a file
(pitch / sqrt(12), the smearing digitization of :mod:`exatrkx.sim.geometry` that made it)
and the track selection after the fit (:data:`COMMON_SELECTION`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Every volume of the generic detector with sensitive modules, in geometry-id order (pixels
#: 7-9, short strips 12-14, long strips 16-18; :data:`exatrkx.sim.geometry.SUBDETECTORS`).
VOLUMES: tuple[int, ...] = (7, 8, 9, 12, 13, 14, 16, 17, 18)
#: (volume, layer) pairs of the seeding spacepoints: the pixel barrel and the four
#: innermost disks of each pixel endcap (generic-seeding-config.json).
SEEDING_LAYERS: tuple[tuple[int, int], ...] = (
    (8, 2), (8, 4), (8, 6), (8, 8), (9, 2), (9, 4), (9, 6), (9, 8),
    (7, 14), (7, 12), (7, 10), (7, 8))


@dataclass(frozen=True)
class SeedFinderSettings:
    """Grid-triplet seed finder (ckf_tracks.py lines 120-131; ``r_min`` is ACTS' default,
    33 mm)."""

    r_max_mm: float = 200.0
    delta_r_mm: tuple[float, float] = (1.0, 300.0)
    collision_region_mm: tuple[float, float] = (-250.0, 250.0)
    z_mm: tuple[float, float] = (-2000.0, 2000.0)
    max_seeds_per_middle_sp: int = 1
    sigma_scattering: float = 5.0
    rad_length_per_seed: float = 0.1
    min_pt_gev: float = 0.5
    impact_max_mm: float = 3.0
    b_field_t: float = 2.0
    beam_position_mm: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class InitialSigmas:
    """Starting covariance of the track parameters (ckf_tracks.py lines 142-152; the same in
    full_chain_test.py), for the CKF's seeds and for our proto-tracks alike."""

    loc0_mm: float = 1.0
    loc1_mm: float = 1.0
    phi_deg: float = 1.0
    theta_deg: float = 1.0
    q_over_p_per_gev: float = 0.0
    time_ns: float = 1.0
    q_over_pt_per_gev: float = 0.1
    pt_rel: float = 0.1
    var_inflation: tuple[float, ...] = (1.0,) * 6


@dataclass(frozen=True)
class TrackSelection:
    """A track selection (ACTS' ``TrackSelectorConfig``); None = no cut."""

    pt_min_gev: float | None = None
    abs_eta_max: float | None = None
    loc0_mm: tuple[float, float] | None = None
    min_measurements: int | None = None
    max_holes: int | None = None
    max_outliers: int | None = None


@dataclass(frozen=True)
class CkfSettings:
    """The CKF (ckf_tracks.py lines 162-176): its measurement selector and the selection of
    the tracks it builds."""

    chi2_cut_measurement: float = 15.0
    chi2_cut_outlier: float = 25.0
    measurements_per_surface: int = 10
    seed_deduplication: bool = True
    stay_on_seed: bool = True
    selection: TrackSelection = TrackSelection(pt_min_gev=0.5, abs_eta_max=3.0,
                                               loc0_mm=(-4.0, 4.0), min_measurements=7,
                                               max_holes=2, max_outliers=2)


@dataclass(frozen=True)
class AmbiguitySettings:
    """Greedy ambiguity resolution (full_chain_test.py, generic detector)."""

    max_shared_hits: int = 3
    max_iterations: int = 1_000_000
    min_measurements: int = 7


@dataclass(frozen=True)
class KalmanSettings:
    """Kalman fitter of our proto-tracks (defaults of ``addKalmanTracks``); the perigee
    surface at the origin is where the fitted parameters are given."""

    multiple_scattering: bool = True
    energy_loss: bool = True
    reverse_filtering_momentum_gev: float = 0.0
    reverse_filtering_covariance_scaling: float = 100.0
    chi2_cut: float = float("inf")


SEED_FINDER = SeedFinderSettings()
INITIAL_SIGMAS = InitialSigmas()
CKF = CkfSettings()
AMBIGUITY = AmbiguitySettings()
KALMAN = KalmanSettings()
#: Applied after the fit to every finder's tracks (ours: the CKF's own selector already holds
#: the same pT, eta and length cuts or tighter ones; no cut on d0, so displaced tracks stay).
COMMON_SELECTION = TrackSelection(pt_min_gev=0.5, abs_eta_max=3.0, min_measurements=5)
#: Proto-tracks with fewer hits are not handed to ACTS (a seed needs three).
MIN_PROTO_TRACK_HITS = 3

#: (what, value, source) rows for the documentation and the study's report.
SOURCES: tuple[tuple[str, str, str], ...] = (
    ("seeding spacepoints", "pixel barrel (volume 8, layers 2-8), pixel endcap disks 8-14 of "
     "volume 7 and 2-8 of volume 9", "Examples/Configs/generic-seeding-config.json"),
    ("seed finder (grid triplets)", "r <= 200 mm, deltaR 1-300 mm, collision region "
     "+-250 mm, |z| < 2000 mm, 1 seed per middle spacepoint, sigmaScattering 5, "
     "radLengthPerSeed 0.1, pT > 0.5 GeV, impactMax 3 mm, 2 T",
     "Examples/Scripts/Python/ckf_tracks.py @64e6463, lines 120-131"),
    ("starting covariance", "sigma loc0, loc1 1 mm; phi, theta 1 deg; time 1 ns; "
     "q/pT 0.1 e/GeV; pT 10%; inflation 1", "ckf_tracks.py lines 142-152"),
    ("CKF", "chi2 15 (measurement) / 25 (outlier), at most 10 measurements per surface, "
     "seed deduplication, stay on seed", "ckf_tracks.py lines 170-176"),
    ("CKF track selector", "pT > 0.5 GeV, |eta| < 3, |d0| < 4 mm, >= 7 measurements, "
     "<= 2 holes, <= 2 outliers", "ckf_tracks.py lines 162-169"),
    ("ambiguity resolution", "greedy: at most 3 shared hits, 10^6 iterations, "
     ">= 7 measurements", "Examples/Scripts/Python/full_chain_test.py (generic detector, "
     "--ambi-solver greedy)"),
    ("Kalman fitter (GNN tracks)", "multiple scattering and energy loss, reverse filtering "
     "off, chi2 cut none, parameters at the perigee of the origin",
     "defaults of addKalmanTracks, acts/examples/reconstruction.py (pyacts 48.1.0)"),
    ("selection after the fit (both)", "pT >= 0.5 GeV, |eta| < 3, >= 5 measurements",
     "ours"),
    ("hit resolution", "pitch / sqrt(12): pixels 50 x 50 um, short strips 80 um x 1.2 mm, "
     "long strips 120 um x 10.8 mm", "Examples/Configs/generic-digi-smearing-config.json"),
)
