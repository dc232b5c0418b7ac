"""Training: truth pairs, augmentation, and a real (quick) training run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from exatrkx.config import LABEL_METHODS
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
