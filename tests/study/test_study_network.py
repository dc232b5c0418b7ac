"""The study's network-scan settings, grid, model rows and report sections (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.contract import Option
from exatrkx.errors import InputError
from exatrkx.study.config import StudyConfig, parse_float_list
from exatrkx.study.markdown import _f, _prometheus_section
from exatrkx.study.network import NetPoint, network_rows, network_section, scan_grid
from exatrkx.util.timing import TimedRun


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
    def point(option: int, delay: float, gbps: float, lat: list[float], eps: float,
              up: float, down: float, mismatched: int = 0) -> NetPoint:
        loaded = TimedRun([1.0] * 10, wall_s=10 / eps)
        return NetPoint(Option(option), delay, gbps, TimedRun(lat), loaded, 4, up, down,
                        mismatched)

    points = [point(3, 0.0, 0.0, [10.0, 12.0], 90.0, 1e5, 2e5),
              point(3, 0.5, 0.0, [16.0], 60.0, 1e5, 2e5),
              point(3, 0.5, 1.0, [20.0], 50.0, 1e5, 2e5, mismatched=1),
              point(5, 0.5, 0.0, [5.0], 200.0, 1e4, 1e4)]
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


def test_servers_table_from_fake_points() -> None:
    from exatrkx.study.config import parse_int_list
    from exatrkx.study.scaleout import ServersPoint, server_settings, servers_rows, servers_section

    assert server_settings((3, 1, 2)) == [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3)]
    assert parse_int_list("2,1", "--servers") == (1, 2)
    assert StudyConfig().servers == ()
    points = [ServersPoint(1, 1, Option(5), 4, TimedRun([40.0] * 20, wall_s=2.0),
                           per_server=[20]),
              ServersPoint(2, 1, Option(5), 4, TimedRun([30.0] * 20, wall_s=1.6),
                           per_server=[10, 10]),
              ServersPoint(1, 2, Option(5), 4, TimedRun([35.0] * 20, wall_s=1.8),
                           per_server=[20], mismatched=1),
              ServersPoint(2, 1, Option(4), 1, TimedRun([90.0] * 10, wall_s=1.0),
                           per_server=[5, 5])]
    rows = servers_rows(points)
    assert rows[0]["speedup"] == pytest.approx(1.0)
    assert rows[1]["speedup"] == pytest.approx(12.5 / 10.0)
    assert rows[2]["identical_labels"] is False
    assert rows[3]["speedup"] != rows[3]["speedup"]  # no 1 x 1 point for S4 c1: NaN
    text = "\n".join(servers_section(rows, 2, _f))
    assert "## Scale-out over servers" in text
    assert "| 2 | 1 | S5 | 4 | 12.50 | 1.25 | 30.00 | 30.00 | 10/10 | yes |" in text
    assert "1.25x one server's throughput" in text
    assert "2-core machine" in text


def test_stage_plot_fits_the_tallest_stack(tmp_path: Path) -> None:
    from exatrkx.study.analysis import OVERHEAD
    from exatrkx.study.plots import plot_stages

    stages = {"embed": 5.0, "build": 300.0, "filter": 2.0, "gnn": 1.0, "label": 40.0}
    options = {o: {"stages_ms": stages if o == "0" else {"exatrkx_pipeline": 20.0},
                   "overhead_ms": dict.fromkeys(OVERHEAD, 10.0)} for o in ("0", "5")}
    summary = {"options": options, "floor": {"hop_ms": 0.5, "ensemble5_ms": 1.0,
                                            "touch_hop_ms": 0.7, "touch_ensemble5_ms": 1.5}}
    import matplotlib.figure

    seen: list[tuple[float, float]] = []
    original = matplotlib.figure.Figure.savefig

    def record(fig: matplotlib.figure.Figure, *args: object, **kwargs: object) -> None:
        seen.extend(ax.get_ylim() for ax in fig.axes)
        original(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(matplotlib.figure.Figure, "savefig", record)
        plot_stages(summary, tmp_path / "stages.png")
    assert seen[0][1] >= 348.0 and seen[1][1] >= 50.0
