"""``exatrkx chain`` on ACTS-simulated events: the JSON contract, the table, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from exatrkx.cli import app

runner = CliRunner()
CONTRACT = {"track_efficiency", "track_efficiency_displaced", "fake_rate", "duplicate_rate",
            "finding_ms_per_event", "ms_per_event", "pt_resolution"}


def test_chain_json_has_the_contract_keys(acts_events: Path, tmp_path: Path) -> None:
    """Option 0 with the shipped weights and the CKF; the JSON object is the last line."""
    res = runner.invoke(app, ["chain", "--events", str(acts_events), "--finders", "gnn,ckf",
                              "--json", "--plots", str(tmp_path / "plots")])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["events"] == 4 and summary["option"] == 0
    assert sorted(summary["finders"]) == ["ckf", "gnn"]
    for name, finder in summary["finders"].items():
        assert CONTRACT <= set(finder), name
        for key in CONTRACT - {"track_efficiency_displaced"}:  # prompt muons: no displaced
            assert isinstance(finder[key], float) and np.isfinite(finder[key]), (name, key)
        assert finder["track_efficiency_displaced"] is None  # NaN -> null: no such particle
        assert 0.0 <= finder["track_efficiency"] <= 1.0
        assert finder["ms_per_event"] >= finder["finding_ms_per_event"] > 0
    assert summary["finders"]["ckf"]["track_efficiency"] >= 0.9
    assert (tmp_path / "plots" / "efficiency_vs_radius.png").stat().st_size > 1000


def test_chain_table(acts_events: Path) -> None:
    res = runner.invoke(app, ["chain", "--events", str(acts_events), "--finders", "ckf"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("event000000000: ") and " hits; ckf " in lines[0]
    assert "4 events, 0 failed" in res.output
    assert any(line.startswith("ckf ") for line in lines[-2:])


@pytest.mark.parametrize(("args", "message"), [
    (["--finders", "gnn,kf"], "--finders: unknown finder 'kf'"),
    (["--resume"], "--resume needs --out"),
    (["--option", "7"], "service option must be one of 0-5"),
    (["--timeout", "0"], "--timeout must be positive"),
])
def test_bad_settings_are_one_line(acts_events: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["chain", "--events", str(acts_events), *args])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_events_without_truth_are_named(tmp_path: Path) -> None:
    events = tmp_path / "features"
    events.mkdir()
    np.savetxt(events / "evt_1.csv", np.random.default_rng(0).random((20, 3)), delimiter=",")
    res = runner.invoke(app, ["chain", "--events", str(events), "--finders", "ckf"])
    assert res.exit_code == 2
    assert "evt_1.csv" in res.output and "needs truth" in res.output


def test_unreachable_server_is_exit_3(acts_events: Path) -> None:
    from exatrkx.serve import free_port

    res = runner.invoke(app, ["chain", "--events", str(acts_events), "--option", "5",
                              "--url", f"127.0.0.1:{free_port()}", "--retries", "0"])
    assert res.exit_code == 3
    assert "no ready Triton server" in res.output
