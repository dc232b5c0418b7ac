"""``exatrkx study --chain-events``: the report's section "GNN as a service against the CKF
in process" and its radius figure, from a real (short) study against an embedded server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exatrkx.cli import app


def test_missing_chain_events_is_exit_code_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["study", "--chain-events", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no such file, directory or event prefix" in result.output


@pytest.mark.server
@pytest.mark.slow
def test_study_with_the_chain(tmp_path: Path, acts_events: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "exatrkx.cli", "study", "--quick", "--json", "--out", str(out),
         "--options", "0,4,5", "--protocols", "grpc", "--concurrency", "1",
         "--no-perf-analyzer", "--no-progress", "--chain-events", str(acts_events)],
        capture_output=True, text=True, timeout=400, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    chain = summary["chain"]
    assert chain["events"] == 4 and chain["failed"] == 0 and chain["same_tracks"] is True
    assert [r["name"] for r in chain["rows"]] == ["gnn_s0", "gnn_s4", "gnn_s5", "ckf"]
    for row in chain["rows"]:
        assert 0 <= row["track_efficiency"] <= 1
        assert row["ms_per_event"] >= row["finding_ms_per_event"] > 0
    assert chain["rows"][3]["track_efficiency"] >= 0.9  # the CKF on prompt muons
    report = (out / "report.md").read_text()
    assert "## GNN as a service against the CKF in process" in report
    assert "| GNN S5 (whole-pipeline model) |" in report and "| CKF (ACTS, in process) |" in report
    assert "ckf_tracks.py @64e6463" in report  # the CKF settings' sources
    for line in report.splitlines():  # |eta| in a cell must not split it
        if line.startswith(("| GNN S", "| CKF (ACTS", "| CKF track selector")):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            assert len(cells) == (3 if "selector" in line else 11), line
    assert "(chain_efficiency_vs_radius.png)" in report
    assert (out / "chain_efficiency_vs_radius.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ACTS chain, 4 events" in proc.stdout
