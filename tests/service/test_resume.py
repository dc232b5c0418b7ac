"""``exatrkx reconstruct --resume``: only the events without a tracks file are done again;
client timeout and retry settings are checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.config import PipelineConfig
from exatrkx.core.models import build_models, save_models
from exatrkx.io import tracks_path

runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = PipelineConfig(radius=0.5, max_neighbours=8)
    return save_models(build_models(cfg, seed=0), cfg, tmp_path_factory.mktemp("w"))


def feature_events(folder: Path, count: int) -> Path:
    rng = np.random.default_rng(4)
    folder.mkdir()
    for i in range(count):
        x = rng.random((30 + i, 3)) * 2 - 1
        np.savetxt(folder / f"evt_{i}.csv", x, delimiter=",", fmt="%.6f")
    return folder


def test_resume_skips_events_with_tracks(tmp_path: Path, weights: Path) -> None:
    events = feature_events(tmp_path / "events", 4)
    out = tmp_path / "out"
    base = ["reconstruct", "--events", str(events), "--weights", str(weights),
            "--out", str(out), "--json"]
    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    first = {p.name: p.read_text() for p in out.iterdir()}
    assert sorted(first) == [f"evt_{i}-tracks.csv" for i in range(4)]
    assert tracks_path(out, events / "evt_2.csv") == out / "evt_2-tracks.csv"
    (out / "evt_1-tracks.csv").unlink()
    (out / "evt_3-tracks.csv").unlink()
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["events"] == 2 and summary["skipped"] == 2
    assert summary["failed"] == 0 and summary["unprocessed"] == []
    assert {p.name: p.read_text() for p in out.iterdir()} == first
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temp file left"


@pytest.mark.parametrize(("args", "message"), [
    (["--resume"], "--resume needs --out"),
    (["--timeout", "0"], "--timeout must be positive"),
    (["--retries", "-1"], "--retries must be >= 0"),
])
def test_bad_settings(tmp_path: Path, weights: Path, args: list[str], message: str) -> None:
    events = feature_events(tmp_path / "events", 1)
    res = runner.invoke(app, ["reconstruct", "--events", str(events), "--weights",
                              str(weights), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_unreachable_server_is_a_one_line_error(tmp_path: Path, weights: Path) -> None:
    from exatrkx.serve import free_port

    events = feature_events(tmp_path / "events", 1)
    res = runner.invoke(app, ["reconstruct", "--events", str(events), "--option", "5",
                              "--url", f"127.0.0.1:{free_port()}", "--retries", "0"])
    assert res.exit_code == 3  # the contract's code for an unavailable server
    assert "no ready Triton server" in res.output
