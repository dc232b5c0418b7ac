"""``exatrkx show``: an event in, a readable PNG out; bad input gives one line and exit 2."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.io import Event, write_trackml
from exatrkx.io.shared import shared_data_dir

runner = CliRunner()


def tiny_trackml(outdir: Path) -> Path:
    """Three straight tracks and two noise hits on four barrel layers; returns the prefix."""
    radii = np.array([32.0, 72.0, 116.0, 172.0])
    rows = []
    for pid, (phi, cot) in enumerate([(0.3, 0.2), (2.0, -1.0), (-2.4, 3.0)], start=1):
        rows += [(r * np.cos(phi), r * np.sin(phi), r * cot, pid) for r in radii]
    rows += [(0.0, 72.0, 10.0, 0), (-116.0, 0.0, -50.0, 0)]
    xyz = np.array([r[:3] for r in rows])
    n = len(rows)
    hit_id = np.arange(1, n + 1, dtype=np.int64)
    hits = pd.DataFrame({"hit_id": hit_id, "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                         "volume_id": 8, "layer_id": 2, "module_id": 1})
    particles = pd.DataFrame({"particle_id": [1, 2, 3], "particle_type": 13, "vx": 0.0,
                              "vy": 0.0, "vz": 0.0, "px": 1.0, "py": 1.0, "pz": 1.0, "q": -1,
                              "nhits": 4})
    truth = pd.DataFrame({"hit_id": hit_id, "particle_id": [r[3] for r in rows],
                          "tx": xyz[:, 0], "ty": xyz[:, 1], "tz": xyz[:, 2], "tpx": 1.0,
                          "tpy": 1.0, "tpz": 1.0, "weight": 1.0 / n})
    return write_trackml(Event.from_tables("event000000001", hits, particles, truth), outdir)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 1000 <= width <= 2500 and 500 <= height <= 1400
    assert len(data) > 15_000


def test_show_trackml_event(tmp_path: Path) -> None:
    prefix = tiny_trackml(tmp_path / "events")
    for i, source in enumerate([prefix, tmp_path / "events",
                                tmp_path / "events" / "event000000001-hits.csv"]):
        out = tmp_path / f"show{i}.png"
        result = runner.invoke(app, ["show", str(source), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "14 hits" in result.stdout
        assert_png(out)


def test_show_shared_feature_file(tmp_path: Path) -> None:
    base = shared_data_dir()
    if base is None or not (base / "in_e1000.csv").is_file():
        pytest.skip("../shared/data/in_e1000.csv is absent")
    out = tmp_path / "in_e1000.png"
    result = runner.invoke(app, ["show", str(base / "in_e1000.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout
    assert_png(out)


@pytest.mark.parametrize(("content", "fragment"), [
    ("0.1,0.2,0.3\n0.1,0.2", "bad.csv:2: expected 3 comma-separated values"),
    (b"\x00\x01garbage", "bad.csv:1: binary data"),
    ("", "bad.csv: file is empty"),
])
def test_show_bad_file(tmp_path: Path, content: str | bytes, fragment: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content.encode() if isinstance(content, str) else content)
    out = tmp_path / "never.png"
    result = runner.invoke(app, ["show", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_show_missing_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["show", str(tmp_path / "nothing"), "--out",
                                 str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no such file" in result.stderr and "Traceback" not in result.output


def test_show_unwritable_output(tmp_path: Path) -> None:
    prefix = tiny_trackml(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["show", str(prefix), "--out", str(blocker / "x.png")])
    assert result.exit_code == 2
    assert "cannot write PNG" in result.stderr and "Traceback" not in result.output
