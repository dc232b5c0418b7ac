"""The in-process pipeline (option 0) and the weights folder."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from exatrkx.config import PipelineConfig
from exatrkx.contract import STAGES
from exatrkx.core.models import (
    build_models,
    export_torchscript,
    load_models,
    load_torchscript,
    save_models,
)
from exatrkx.core.pipeline import Pipeline, Stages, load_pipeline, local_stages
from exatrkx.errors import InputError
from exatrkx.io import iter_events, read_event

CONFIG = PipelineConfig(radius=0.3, max_neighbours=16, filter_cut=0.0, gnn_cut=0.0)


def _features(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(0.03, 1.0, n), rng.uniform(-1, 1, n),
                     rng.uniform(-1, 1, n)], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("weights")
    save_models(build_models(CONFIG, seed=1), CONFIG, d, {"note": "random init"})
    return d


def test_save_load_roundtrip(weights: Path) -> None:
    meta = json.loads((weights / "metadata.json").read_text())
    assert meta["note"] == "random init"
    assert meta["config"]["radius"] == 0.3
    nets, config = load_models(weights)
    assert config == CONFIG
    fresh = build_models(CONFIG, seed=1)
    for (_, a), (_, b) in zip(nets.items(), fresh.items(), strict=True):
        for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
            assert torch.equal(pa, pb)


def test_build_models_leaves_global_rng() -> None:
    torch.manual_seed(5)
    expect = torch.rand(3)
    torch.manual_seed(5)
    build_models(CONFIG, seed=9)
    assert torch.equal(torch.rand(3), expect)


def test_missing_weights_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no trained weights"):
        load_models(tmp_path)
    save_models(build_models(CONFIG), CONFIG, tmp_path)
    (tmp_path / "gnn.pt").unlink()
    with pytest.raises(InputError, match=r"gnn\.pt"):
        load_models(tmp_path)


def test_weights_that_do_not_fit_the_config(tmp_path: Path, weights: Path) -> None:
    other = dataclasses.replace(CONFIG, gnn=dataclasses.replace(CONFIG.gnn, hidden=8))
    save_models(build_models(CONFIG), other, tmp_path)
    with pytest.raises(InputError, match="cannot load weights"):
        load_models(tmp_path)


def test_torchscript_export(tmp_path: Path) -> None:
    nets = build_models(CONFIG, seed=2)
    paths = export_torchscript(nets, tmp_path)
    assert sorted(p.name for p in paths.values()) == ["embed.ts", "filter.ts", "gnn.ts"]
    x = torch.from_numpy(_features(40))
    edges = torch.tensor([[5, 9, 30], [1, 2, 29]])
    with torch.inference_mode():
        torch.testing.assert_close(load_torchscript(paths["embed"])(x), nets.embed(x))
        torch.testing.assert_close(load_torchscript(paths["filter"])(x, edges),
                                   nets.filter(x, edges))
        torch.testing.assert_close(load_torchscript(paths["gnn"])(x, edges), nets.gnn(x, edges))


@pytest.mark.parametrize("scripted", [True, False])
def test_run(weights: Path, scripted: bool) -> None:
    pipe = load_pipeline(weights, scripted=scripted, num_threads=None)
    res = pipe.run(_features(), keep_graph=True)
    assert res.labels.shape == (300,)
    assert res.labels.dtype == np.int64
    assert set(res.times_ms) == set(STAGES)
    assert res.edges["build"] > 0 and res.edges["filter"] > 0  # cut 0: the filter keeps all
    assert res.graph["build_edges"].shape == (2, res.edges["build"])
    assert res.graph["gnn_scores"].shape == (res.edges["filter"],)
    cut = pipe.gnn_cut
    assert cut is not None
    assert res.edges["gnn"] == int((res.graph["gnn_scores"] > cut).sum())
    used = np.unique(res.labels[res.labels >= 0])
    np.testing.assert_array_equal(used, np.arange(used.size))


def test_scripted_and_eager_give_same_labels(weights: Path) -> None:
    f = _features(500, seed=4)
    a = load_pipeline(weights, scripted=True, num_threads=None).run(f).labels
    b = load_pipeline(weights, scripted=False, num_threads=None).run(f).labels
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_events_skip_the_nets(n: int) -> None:
    calls: list[str] = []

    def boom(*_args: object) -> torch.Tensor:
        calls.append("called")
        raise AssertionError("no stage should run")

    pipe = Pipeline(Stages(boom, boom, boom, boom, boom))
    res = pipe.run(np.zeros((n, 3), dtype=np.float32))
    assert res.labels.tolist() == [-1] * n
    assert not calls


def test_every_stage_goes_through_the_stages_object(weights: Path) -> None:
    nets, config = load_models(weights)
    local = local_stages(nets, config)
    seen: list[str] = []

    def spy(name: str, fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def wrapped(*args: torch.Tensor) -> torch.Tensor:
            seen.append(name)
            return fn(*args)
        return wrapped

    stages = Stages(**{n: spy(n, getattr(local, n)) for n in STAGES})
    Pipeline(stages).run(_features(100))
    assert seen == list(STAGES)


@pytest.mark.parametrize(("bad", "match"), [
    (np.full((4, 3), np.nan, dtype=np.float32), "non-finite"),
    (np.array([[0.1, 0.2, np.inf]] * 3), "non-finite"),
    (np.zeros((4, 2), dtype=np.float32), r"shape \[N, 3\]"),
    (np.zeros(3, dtype=np.float32), r"shape \[N, 3\]"),
])
def test_bad_features(weights: Path, bad: np.ndarray, match: str) -> None:
    pipe = load_pipeline(weights, num_threads=None)
    with pytest.raises(InputError, match=match):
        pipe.run(bad)


def test_real_event_smoke(weights: Path, shared_hnl_dir: Path) -> None:
    ev = read_event(shared_hnl_dir / "evt_0.csv")
    config = dataclasses.replace(PipelineConfig(), filter_cut=0.0, gnn_cut=0.0)
    pipe = load_pipeline(save_models(build_models(config), config, weights / "real"),
                         num_threads=None)
    res = pipe.run(ev.features)
    assert res.labels.shape == (ev.num_hits,)
    assert res.edges["build"] > ev.num_hits  # realistic density with the default radius


def test_stage_factory_refuses_a_missing_net_or_an_unknown_stage() -> None:
    from exatrkx.config import PipelineConfig
    from exatrkx.core.pipeline import stage

    cfg = PipelineConfig()
    with pytest.raises(ValueError, match="needs its net"):
        stage("gnn", cfg)
    with pytest.raises(ValueError, match="unknown stage"):
        stage("walk", cfg)
    assert callable(stage("build", cfg)) and callable(stage("label", cfg))


def test_run_batch_gives_each_event_its_labels_alone(weights: Path) -> None:
    pipe = load_pipeline(weights, num_threads=None)
    events = [_features(n, seed=n) for n in (300, 0, 1, 2, 150, 45, 500)]
    alone = [pipe.run(f).labels for f in events]
    assert any((a >= 0).any() for a in alone), "the events make tracks"
    for order in ([0, 1, 2, 3, 4, 5, 6], [6, 2, 0, 5], [1], [4, 3]):
        got = pipe.run_batch([events[i] for i in order])
        assert len(got) == len(order)
        for i, res in zip(order, got, strict=True):
            np.testing.assert_array_equal(res.labels, alone[i])
            assert res.labels.dtype == np.int64
    with pytest.raises(InputError, match="non-finite"):
        pipe.run_batch([events[0], np.full((4, 3), np.nan, np.float32)])
    remote_like = Pipeline(Stages(*(lambda *a: a[0] for _ in STAGES)))
    with pytest.raises(TypeError, match="local stages"):
        remote_like.run_batch([events[0]])


@pytest.mark.shared_data
@pytest.mark.slow
def test_run_batch_gives_the_shared_events_their_labels_alone(shared_hnl_dir: Path) -> None:
    """The 100 shared events with the shipped weights, in batches of 1 to 16 events."""
    pipe = load_pipeline()
    events = [ev.features for ev in iter_events(shared_hnl_dir)]
    alone = [pipe.run(f).labels for f in events]
    rng = np.random.default_rng(3)
    for size in (2, 4, 8, 16):
        order = rng.permutation(len(events)).tolist()
        for start in range(0, len(events), size):
            idx = order[start:start + size]
            for i, res in zip(idx, pipe.run_batch([events[i] for i in idx]), strict=True):
                np.testing.assert_array_equal(res.labels, alone[i], err_msg=f"event {i}")
