"""``exatrkx reconstruct`` (option 0) on tiny events with random-init weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.config import PipelineConfig
from exatrkx.core.models import build_models, save_models
from exatrkx.io import Event, write_trackml

runner = CliRunner()
RADII = np.array([32.0, 72.0, 116.0, 172.0, 260.0, 360.0])
# every edge within a generous radius is kept, so the labels are deterministic but arbitrary
CONFIG = PipelineConfig(radius=0.5, max_neighbours=8, filter_cut=0.0, gnn_cut=0.0)


def tiny_event(number: int, outdir: Path, n_particles: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed + number)
    rows = []
    for pid in range(1, n_particles + 1):
        phi, cot = rng.uniform(-np.pi, np.pi), rng.uniform(-1, 1)
        rows += [(r * np.cos(phi), r * np.sin(phi), r * cot, pid) for r in RADII]
    rows += [(50.0, 10.0, 5.0, 0), (-20.0, -150.0, 40.0, 0)]
    xyz = np.array([r[:3] for r in rows])
    n = len(rows)
    hit_id = np.arange(1, n + 1, dtype=np.int64)
    hits = pd.DataFrame({"hit_id": hit_id, "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                         "volume_id": 8, "layer_id": 2, "module_id": 1})
    particles = pd.DataFrame({"particle_id": np.arange(1, n_particles + 1), "particle_type": 13,
                              "vx": 0.0, "vy": 0.0, "vz": 0.0, "px": 2.0, "py": 1.0, "pz": 1.0,
                              "q": -1, "nhits": len(RADII)})
    pid = np.array([r[3] for r in rows])
    truth = pd.DataFrame({"hit_id": hit_id, "particle_id": pid, "tx": xyz[:, 0],
                          "ty": xyz[:, 1], "tz": xyz[:, 2], "tpx": 1.0, "tpy": 1.0,
                          "tpz": 1.0, "weight": np.where(pid > 0, 1.0, 0.0)})
    ev = Event.from_tables(f"event{number:09d}", hits, particles, truth)
    return write_trackml(ev, outdir)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("weights")
    save_models(build_models(CONFIG, seed=0), CONFIG, d)
    return d


@pytest.fixture
def events(tmp_path: Path) -> Path:
    d = tmp_path / "events"
    for i in range(3):
        tiny_event(i, d)
    return d


def test_reconstruct_evaluate_json(events: Path, weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "tracks"
    res = runner.invoke(app, ["reconstruct", "--events", str(events), "--out", str(out),
                              "--evaluate", "--json", "--weights", str(weights)])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("track_efficiency", "fake_rate", "duplicate_rate", "edge_efficiency",
                "edge_purity", "events", "trackml_score", "ms_per_event"):
        assert key in summary
    assert summary["events"] == 3
    assert 0.0 <= summary["edge_efficiency"] <= 1.0
    assert 0.0 <= summary["track_efficiency"] <= 1.0
    assert set(summary["edges"]) == {"build", "filter", "gnn"}
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"event{i:09d}-tracks.csv" for i in range(3)]
    tracks = pd.read_csv(out / files[0])
    assert list(tracks.columns) == ["hit_id", "track_id"]
    assert len(tracks) == 4 * len(RADII) + 2


def test_reconstruct_human_output_and_plots(events: Path, weights: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["reconstruct", "--events", str(events), "--weights", str(weights),
                              "--plots", str(tmp_path / "plots")])
    assert res.exit_code == 0, res.output
    assert "event000000002:" in res.stdout
    assert "track_efficiency=" in res.stdout
    assert len(list((tmp_path / "plots").glob("*.png"))) == 3


def test_bad_event_reported_others_processed(events: Path, weights: Path,
                                             tmp_path: Path) -> None:
    bad = events / "event000000001-hits.csv"
    lines = bad.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[1], "nan", 1)
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "tracks"
    res = runner.invoke(app, ["reconstruct", "--events", str(events), "--out", str(out),
                              "--json", "--weights", str(weights)])
    assert res.exit_code == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "event000000001-hits.csv" in err[0], res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["event000000000-tracks.csv",
                                                     "event000000002-tracks.csv"]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["events"] == 2 and summary["failed"] == 1
    assert "Traceback" not in res.output


def test_evaluate_needs_truth(tmp_path: Path, weights: Path) -> None:
    d = tmp_path / "features"
    d.mkdir()
    rng = np.random.default_rng(1)
    feats = np.stack([rng.uniform(0.03, 1, 50), rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50)],
                     axis=1)
    np.savetxt(d / "evt_0.csv", feats, delimiter=",")
    res = runner.invoke(app, ["reconstruct", "--events", str(d), "--weights", str(weights)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["reconstruct", "--events", str(d), "--weights", str(weights),
                              "--evaluate"])
    assert res.exit_code == 2
    assert "evt_0.csv" in res.stderr and "needs truth" in res.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--option", "9"], "0-5"),
    (["--weights", "EMPTY"], "no trained weights"),
    (["--events", "MISSING"], "no such file"),
])
def test_user_errors(events: Path, weights: Path, tmp_path: Path, args: list[str],
                     message: str) -> None:
    (tmp_path / "empty").mkdir()
    base = {"--events": str(events), "--weights": str(weights)}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = {"EMPTY": str(tmp_path / "empty"),
                      "MISSING": str(tmp_path / "nope")}.get(value, value)
    argv = ["reconstruct"] + [x for kv in base.items() for x in kv]
    res = runner.invoke(app, argv)
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert "Traceback" not in res.output
