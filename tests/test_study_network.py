"""The study's network-scan settings, grid, model rows and report sections (no server)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.errors import InputError
from exatrkx.study.config import StudyConfig, parse_float_list
from exatrkx.study.network import NetPoint, network_rows, network_section, scan_grid
from exatrkx.study.report import _f, _prometheus_section


def test_delay_lists_are_parsed_and_checked() -> None:
    assert parse_float_list("2.5, 0,0.1,0.5,0", "--network-delay") == (0.0, 0.1, 0.5, 2.5)
    for text in ("", "0,fast"):
        with pytest.raises(InputError):
            parse_float_list(text, "--network-delay")
    with pytest.raises(InputError):
        StudyConfig(network_delays=(-1.0,))
    with pytest.raises(InputError):
        StudyConfig(network_bandwidths=(0.0,))
    assert StudyConfig(network_delays=(0.1,)).network_delays == (0.1,)


def test_bad_network_delay_is_one_line_and_exit_code_2() -> None:
    result = CliRunner().invoke(app, ["study", "--network-delay", "0,slow"])
    assert result.exit_code == 2
    assert "--network-delay" in result.output


def test_grid_has_the_model_baseline_first() -> None:
    assert scan_grid((0.5, 0.1), ()) == [(0.0, 0.0), (0.1, 0.0), (0.5, 0.0)]
    assert scan_grid((0.1,), (10.0, 1.0)) == [(0.0, 0.0), (0.1, 0.0), (0.0, 1.0), (0.1, 1.0),
                                              (0.0, 10.0), (0.1, 10.0)]


def test_rows_compare_with_the_model() -> None:
    points = [NetPoint(3, 0.0, 0.0, [10.0, 12.0], 90.0, 4, 1e5, 2e5),
              NetPoint(3, 0.5, 0.0, [16.0], 60.0, 4, 1e5, 2e5),
              NetPoint(3, 0.5, 1.0, [20.0], 50.0, 4, 1e5, 2e5, mismatched=1),
              NetPoint(5, 0.5, 0.0, [5.0], 200.0, 4, 1e4, 1e4)]
    rows = network_rows(points)
    assert rows[1]["model_ms"] == pytest.approx(11.0 + 5 * 1.0)
    assert rows[2]["model_ms"] == pytest.approx(11.0 + 5.0 + 8 * 3e5 / 1e9 * 1e3)
    assert rows[2]["identical_labels"] is False
    assert rows[3]["model_ms"] != rows[3]["model_ms"]  # no option-5 baseline: NaN
    text = "\n".join(network_section(rows, _f))
    assert "## Network latency" in text and "| S3 | 0.50 | 1.00 |" in text


def test_prometheus_section() -> None:
    assert _prometheus_section({"prometheus": {}}) == []
    usage = {"requests": 10, "executions": 10, "queue_us_per_exec": 20.0, "request_us": 900.0,
             "queue_us": 20.0, "compute_input_us": 5.0, "compute_infer_us": 850.0,
             "compute_output_us": 5.0, "busy_fraction": 0.4}
    text = "\n".join(_prometheus_section({"prometheus": {
        "wall_s": 12.0, "models": {"exatrkx_pipeline": usage},
        "gauges": {"nv_cpu_utilization": {"mean": 0.5, "max": 0.9, "samples": 12}}}}))
    assert "exatrkx_pipeline" in text and "nv_cpu_utilization: mean 0.500" in text
