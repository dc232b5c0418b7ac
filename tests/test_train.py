"""Training: truth pairs, augmentation, and a real (quick) training run end to end."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from exatrkx.config import LABEL_METHODS, PipelineConfig
from exatrkx.core.models import load_models
from exatrkx.core.pipeline import load_pipeline
from exatrkx.errors import InputError
from exatrkx.physics.truth import truth_graph
from exatrkx.sim.simulate import run_simulate
from exatrkx.train import Sample, TrainConfig, edge_truth, rotate_phi, run_train


def test_truth_graph_joins_consecutive_hits_of_each_particle() -> None:
    pid = np.array([7, 0, 7, 3, 7, 3, 0])
    hit_id = np.array([30, 1, 10, 5, 20, 6, 2])
    pairs = truth_graph(pid, hit_id)
    # particle 7: rows 2 (id 10) -> 4 (id 20) -> 0 (id 30); particle 3: rows 3 -> 5; noise none
    assert sorted(map(tuple, pairs.T.tolist())) == [(4, 0), (4, 2), (5, 3)]
    assert (pairs[0] > pairs[1]).all()


def test_edge_truth_can_teach_slow_particles_as_false() -> None:
    pid = torch.tensor([5, 5, 9, 9, 0, 0])
    pt = torch.tensor([2.0, 2.0, 0.2, 0.2, 0.0, 0.0])
    s = Sample(torch.zeros(6, 3), pid, torch.zeros((2, 0), dtype=torch.int64),
               torch.zeros(0), pt, torch.zeros(0, dtype=torch.bool), None)  # type: ignore[arg-type]
    edges = torch.tensor([[1, 3, 5, 2], [0, 2, 4, 1]])
    assert edge_truth(s, edges, 0.0).tolist() == [True, True, False, False]
    assert edge_truth(s, edges, 0.4).tolist() == [True, False, False, False]


def test_rotate_phi_stays_in_range_and_keeps_r_z() -> None:
    x = torch.tensor([[0.1, 0.99, 0.2], [0.5, -1.0, -0.3], [0.9, 0.0, 1.0]])
    out = rotate_phi(x, torch.Generator().manual_seed(3))
    assert ((out[:, 1] >= -1) & (out[:, 1] < 1)).all()
    torch.testing.assert_close(out[:, [0, 2]], x[:, [0, 2]])
    turn = torch.remainder(out[:, 1] - x[:, 1], 2.0)
    torch.testing.assert_close(turn, turn[0].expand(3))  # one angle for the whole event


def test_quick_config_is_small() -> None:
    quick, full = TrainConfig.quick(), TrainConfig()
    assert quick.train_events < full.train_events
    assert quick.gnn_epochs < full.gnn_epochs


@pytest.mark.slow
def test_quick_training_from_files_gives_a_working_pipeline(tmp_path: Path) -> None:
    data = tmp_path / "events"
    run_simulate("hnl", 8, seed=5, out=data, progress=False)
    out = tmp_path / "weights"
    lines: list[str] = []
    result = run_train(out, data=data, quick=True, progress=False, log=lines.append)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["config"]["radius"] == pytest.approx(result.config.radius)
    assert 0.0 <= meta["validation_metrics"]["track_efficiency"] <= 1.0
    assert any("gnn epoch" in line for line in lines)
    _, config = load_models(out)
    assert config.label_method in LABEL_METHODS  # the one the validation events chose
    pipe = load_pipeline(out)
    ev_features = np.array([[0.032, 0.1, 0.01], [0.072, 0.1, 0.02], [0.116, 0.1, 0.03]],
                           dtype=np.float32)
    assert pipe(ev_features).shape == (3,)


def test_training_data_without_truth_is_refused(tmp_path: Path) -> None:
    (tmp_path / "evt_0.csv").write_text("0.1,0.2,0.3\n0.2,0.2,0.4\n")
    (tmp_path / "evt_1.csv").write_text("0.1,0.2,0.3\n0.2,0.2,0.4\n")
    with pytest.raises(InputError, match="without truth"):
        run_train(tmp_path / "w", data=tmp_path, quick=True, progress=False, log=lambda _: None)


def test_negative_edge_pt_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from exatrkx.cli import app

    result = CliRunner().invoke(app, ["train", "--quick", "--edge-pt", "-1",
                                      "--out", str(tmp_path / "w")])
    assert result.exit_code == 2
    assert "--edge-pt must be >= 0" in result.output
    assert not (tmp_path / "w").exists()


@pytest.fixture(scope="module")
def gun_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight particle-gun events (100 muons each, pT 0.5-10 GeV) through ACTS."""
    from exatrkx.sim.particles import GunConfig
    from exatrkx.sim.simulate import SimConfig

    out = tmp_path_factory.mktemp("gun")
    run_simulate("gun", 8, seed=17, out=out, progress=False,
                 config=SimConfig(gun=GunConfig(n_particles=100, pt_range=(0.5, 10.0))))
    return out


def test_a_layer_map_learnt_from_simulation_finds_the_truth_pairs(gun_events: Path) -> None:
    from exatrkx.core.stages.layerpairs import LayerEmbedding, build_layer_pairs
    from exatrkx.io import iter_events
    from exatrkx.physics.truth import event_truth_graph, hit_pt
    from exatrkx.train import learn_layer_map

    events = list(iter_events(gun_events))
    layers, info = learn_layer_map(events[:6], pt_min=0.5, efficiency=0.99, coverage=1.0)
    ids = {(v, lay) for e in events[:6]
           for v, lay in zip(e.hits["volume_id"], e.hits["layer_id"], strict=True)}
    assert len(layers.boxes) == len(ids) == info["layers"]
    assert info["pairs_kept"] == info["pairs_in_windows"] >= 0.98 * info["truth_pairs"]
    found = total = 0
    for e in events[6:]:  # events the map has not seen
        emb = LayerEmbedding(layers)(torch.from_numpy(e.features))
        assert float((emb[:, 3] >= 0).float().mean()) > 0.99  # hits in the learnt boxes
        edges = build_layer_pairs(emb, layers, 64).numpy()
        truth = event_truth_graph(e)
        truth = truth[:, hit_pt(e)[truth[0]] > 1.0]
        n = e.num_hits
        found += int(np.isin(truth[0] * n + truth[1], edges[0] * n + edges[1]).sum())
        total += truth.shape[1]
    assert found >= 0.95 * total
    # fewer layer pairs, fewer candidates: the coverage trades truth pairs for edges
    fewer, info2 = learn_layer_map(events[:6], pt_min=0.5, efficiency=0.99, coverage=0.9)
    assert len(fewer.pairs) < len(layers.pairs)
    assert info2["candidates_per_hit"] < info["candidates_per_hit"]


def test_subgraph_wedge_renumbers_the_edges_inside() -> None:
    from exatrkx.train import Subgraph

    x = torch.tensor([[0.1, 0.0, 0.0], [0.1, 0.2, 0.0], [0.1, -0.1, 0.0], [0.1, 0.9, 0.0]])
    assert Subgraph.wedge(x, 1.0) is None
    sub = Subgraph.wedge(x, 0.15)
    assert sub is not None
    assert sub.keep.tolist() == [0, 2]
    edges, inside = sub.edges(torch.tensor([[2, 1, 3, 2], [0, 0, 1, 2]], dtype=torch.int32))
    assert edges.tolist() == [[1, 1], [0, 1]]
    assert inside.tolist() == [True, False, False, True]


def test_a_resumed_stage_ends_where_an_uninterrupted_one_does() -> None:
    from exatrkx.train import _epochs

    x = torch.rand(50, 3, generator=torch.Generator().manual_seed(1))
    sample = Sample(x, torch.zeros(50, dtype=torch.int64), torch.zeros((2, 0), dtype=torch.int64),
                    torch.zeros(0), torch.zeros(50), torch.zeros(0, dtype=torch.bool), None)

    def run(epochs: int, saved: dict | None = None) -> tuple[torch.nn.Module, list[dict]]:
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 1)
        if saved is not None:
            net.load_state_dict(saved["net"])
        states: list[dict] = []

        def step(s: Sample, xs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            noise = torch.rand(xs.shape[0], 1, generator=gen)
            return (net(xs) - noise).pow(2).mean()

        _epochs(net, [sample, sample], epochs, 0.01, 5, step, lambda _: None, "t", 2,
                saved, lambda st: states.append(copy.deepcopy({**st, "net": net.state_dict()})))
        return net, states

    whole, _ = run(4)
    _, states = run(4)
    resumed, _ = run(4, states[1])  # interrupted after epoch 2 of 4
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_the_pileup_recipe_needs_data(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from exatrkx.cli import app

    result = CliRunner().invoke(app, ["train", "--recipe", "pu200", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--data" in result.output
    result = CliRunner().invoke(app, ["train", "--recipe", "pu300", "--data", str(tmp_path),
                                      "--out", str(tmp_path / "w")])
    assert result.exit_code == 2
    assert "unknown recipe" in result.output


@pytest.mark.slow
def test_quick_pileup_recipe_runs_end_to_end_and_resumes(gun_events: Path,
                                                         tmp_path: Path) -> None:
    from exatrkx.io import iter_events

    out = tmp_path / "w"
    lines: list[str] = []
    result = run_train(out, data=[gun_events], quick=True, recipe="pu200", progress=False,
                       log=lines.append)
    assert any(line.startswith("layer map:") for line in lines)
    assert result.config.build_method == "layer_pairs"
    assert result.config.selection.min_pt in (0.7, 0.8, 0.9)
    assert not (out / ".train-checkpoint.pt").exists()
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["made_by"] == "exatrkx train --quick --recipe pu200"
    pipe = load_pipeline(out)
    event = next(iter(iter_events(gun_events)))
    labels = pipe(event.features)
    assert labels.shape == (event.num_hits,) and labels.max() >= 0
    # the filter learnt on the graphs the pipeline builds (7 training events, 1 validation)
    logged = next(line for line in lines if line.startswith("build: "))
    train_ev = list(iter_events(gun_events))[:7]
    built = sum(pipe.run(e.features).edges["build"] for e in train_ev)
    per_hit = built / sum(e.num_hits for e in train_ev)
    assert logged == f"build: {per_hit:.2f} edges per hit"
    # a checkpoint of other settings is refused on --resume
    from exatrkx.train import Checkpoint

    torch.save({"fingerprint": {"other": 1}}, out / ".train-checkpoint.pt")
    with pytest.raises(InputError, match="other settings"):
        run_train(out, data=[gun_events], quick=True, recipe="pu200", progress=False,
                  log=lines.append, resume=True)
    assert Checkpoint(out / ".train-checkpoint.pt", {}, resume=False).state == {}


@pytest.mark.slow
def test_an_interrupted_run_resumed_makes_the_same_weights(gun_events: Path,
                                                          tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    run_train(whole, data=[gun_events], quick=True, recipe="pu200", progress=False,
              log=lambda _: None)

    def stop_in_second_gnn_epoch(line: str) -> None:
        if line.startswith("gnn epoch 2/"):  # logged before that epoch is saved
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_train(out, data=[gun_events], quick=True, recipe="pu200", progress=False,
                  log=stop_in_second_gnn_epoch)
    assert (out / ".train-checkpoint.pt").is_file()
    assert not (out / "metadata.json").exists()
    lines: list[str] = []
    run_train(out, data=[gun_events], quick=True, recipe="pu200", progress=False,
              log=lines.append, resume=True)
    assert any(line.startswith("resuming after embed, filter (gnn epoch 1)") for line in lines)
    assert not any(line.startswith(("filter epoch", "gnn epoch 1/")) for line in lines)
    nets_a, config_a = load_models(whole)
    nets_b, config_b = load_models(out)
    assert config_a == config_b
    for (_, net_a), (_, net_b) in zip(nets_a.items(), nets_b.items(), strict=True):
        for a, b in zip(net_a.state_dict().values(), net_b.state_dict().values(),
                        strict=True):
            torch.testing.assert_close(a, b)


def test_resume_takes_other_settings_only_for_steps_not_begun(tmp_path: Path) -> None:
    from exatrkx.core.models import build_models
    from exatrkx.train import Checkpoint

    def fingerprint(**changes: Any) -> dict[str, Any]:
        return {"train_config": {**asdict(TrainConfig()), **changes}, "data": ["d"]}

    path = tmp_path / "ck.pt"
    nets, cfg = build_models(), PipelineConfig()
    Checkpoint(path, fingerprint(), resume=False).save(nets, cfg, {}, ["embed", "filter"])
    ck = Checkpoint(path, fingerprint(gnn_epochs=2, label_events=1), resume=True)
    assert ck.done == ["embed", "filter"]
    for other in (fingerprint(filter_epochs=1), fingerprint(lr=1e-4),
                  {**fingerprint(), "data": ["e"]}):
        with pytest.raises(InputError, match="other settings"):
            Checkpoint(path, other, resume=True)
    # once the GNN has begun, its epochs are fixed (the learning-rate schedule uses them)
    Checkpoint(path, fingerprint(), resume=False).save(
        nets, cfg, {}, ["embed", "filter"], {"stage": "gnn", "epoch": 1})
    with pytest.raises(InputError, match="other settings"):
        Checkpoint(path, fingerprint(gnn_epochs=2), resume=True)
