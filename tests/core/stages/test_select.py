"""Track selection: circle-fit pT, the sagitta gate, renumbering, and the label stage using it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exatrkx.config import PipelineConfig, SelectionConfig
from exatrkx.constants import GEV_PER_TESLA_MM
from exatrkx.core.features import features_from_xyz
from exatrkx.core.stages.label import label_event
from exatrkx.core.stages.select import select_tracks, track_pt


def helix_xy(pt: float, phi0: float, radii: np.ndarray, field: float = 2.0,
             charge: int = 1) -> np.ndarray:
    """Transverse points (mm) of a prompt track of ``pt`` GeV where it crosses ``radii``
    on its way out (radii below its diameter)."""
    big_r = pt / (GEV_PER_TESLA_MM * field)
    # chord from the origin of length rho on a circle of radius R through it: half angle
    alpha = np.arcsin(radii / (2.0 * big_r))
    phi = phi0 - charge * alpha
    return np.stack([radii * np.cos(phi), radii * np.sin(phi)], axis=1)


def looper_xy(pt: float, n: int, turn: float = 1.6 * np.pi, field: float = 2.0) -> np.ndarray:
    """``n`` points along ``turn`` radians of a prompt circle (out and back in)."""
    big_r = pt / (GEV_PER_TESLA_MM * field)
    t = np.linspace(0.2, turn, n)
    return np.stack([big_r * (1 - np.cos(t)), big_r * np.sin(t)], axis=1)


BARREL = np.array([32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0, 660.0, 820.0, 1020.0])


@pytest.mark.parametrize("pt", [0.25, 0.5, 1.0, 3.0, 10.0])
def test_fitted_pt_of_exact_helices(pt: float) -> None:
    xy = helix_xy(pt, 0.3, BARREL[: 6 if pt < 0.5 else 10])
    fitted = track_pt(xy, np.zeros(len(xy), dtype=np.int64), field=2.0)
    assert fitted.shape == (1,)
    assert fitted[0] == pytest.approx(pt, rel=1e-6)


def test_fitted_pt_with_smearing_and_the_field() -> None:
    rng = np.random.default_rng(5)
    xy = helix_xy(2.0, -1.0, BARREL) + rng.normal(0.0, 0.03, (len(BARREL), 2))
    fitted = track_pt(xy, np.zeros(len(xy), dtype=np.int64), field=2.0)[0]
    assert fitted == pytest.approx(2.0, rel=0.05)
    # the same hits in half the field are half the momentum
    assert track_pt(xy, np.zeros(len(xy), dtype=np.int64), field=1.0)[0] == pytest.approx(
        fitted / 2, rel=1e-9)


def test_unmeasurable_tracks_are_infinitely_stiff() -> None:
    line = np.stack([BARREL, 2 * BARREL], axis=1)
    two = helix_xy(0.3, 0.0, BARREL[:2])
    xy = np.concatenate([line, two])
    labels = np.array([0] * len(line) + [1, 1], dtype=np.int64)
    assert np.isinf(track_pt(xy, labels, 2.0)).all()


def test_select_drops_loopers_keeps_stiff_and_short_tracks() -> None:
    loop = looper_xy(0.2, 14)                                 # 0.2 GeV: curls back
    stiff = helix_xy(5.0, 2.0, BARREL)                        # 5 GeV
    short = helix_xy(0.2, -2.0, np.array([30.0, 34.0, 38.0, 42.0, 46.0]))  # 16 mm span
    xy = np.concatenate([stiff, loop, short])
    labels = np.array([0] * len(stiff) + [1] * len(loop) + [2] * len(short), dtype=np.int64)
    labels = np.concatenate([labels, [-1]])
    xy = np.concatenate([xy, [[5.0, 5.0]]])
    out = select_tracks(xy, labels, min_pt=0.4, min_sagitta=1.0, field=2.0)
    assert (out[: len(stiff)] == 0).all()
    assert (out[len(stiff): len(stiff) + len(loop)] == -1).all()
    # the short arc is too short to judge, so it keeps its track, renumbered 2 -> 1
    assert (out[len(stiff) + len(loop): -1] == 1).all()
    assert out[-1] == -1
    assert out.dtype == np.int64
    # no threshold: unchanged; a lower threshold keeps the 0.2 GeV looper
    assert select_tracks(xy, labels, 0.0, 1.0, 2.0) is labels
    assert (select_tracks(xy, labels, 0.15, 1.0, 2.0) == labels).all()


def test_label_stage_applies_the_selection() -> None:
    loop = looper_xy(0.2, 12)
    stiff = helix_xy(5.0, 2.0, BARREL)
    xy = np.concatenate([loop, stiff])
    z = np.linspace(10.0, 200.0, len(xy))[:, None]
    features = torch.from_numpy(features_from_xyz(np.concatenate([xy, z], axis=1)))
    n_loop = len(loop)
    chain = [(i + 1, i) for i in range(n_loop - 1)]
    chain += [(n_loop + i + 1, n_loop + i) for i in range(len(stiff) - 1)]
    edges = torch.tensor(chain, dtype=torch.int64).t()
    scores = torch.ones(edges.shape[1])
    every = label_event(features, edges, scores, 0.5, "components")
    assert every.unique().tolist() == [0, 1]
    selected = label_event(features, edges, scores, 0.5, "components", SelectionConfig())
    assert (selected[:n_loop] == -1).all() and (selected[n_loop:] == 0).all()


def test_selection_travels_in_the_pipeline_config() -> None:
    cfg = PipelineConfig(selection=SelectionConfig(min_pt=0.7, min_sagitta=2.0, field=3.8))
    assert PipelineConfig.from_dict(cfg.to_dict()) == cfg
    # weights written before the selection existed get the defaults
    old = cfg.to_dict()
    del old["selection"]
    assert PipelineConfig.from_dict(old).selection == SelectionConfig()
