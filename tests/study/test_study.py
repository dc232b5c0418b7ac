"""The timing study: its lists and settings, the report's arithmetic, bad input, and the
real ``exatrkx study --quick`` against an embedded Triton server (with random-init nets)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.config import PipelineConfig
from exatrkx.core.models import build_models, save_models
from exatrkx.errors import InputError
from exatrkx.io.shared import hnl_events_dir
from exatrkx.serve.repository import DEFAULT_BATCHING, DEFAULT_INSTANCES
from exatrkx.service.stats import add_delta
from exatrkx.study.analysis import OVERHEAD, overhead
from exatrkx.study.config import StudyConfig, parse_int_list, parse_protocols, quick_config
from exatrkx.study.interrupt import signals_as_interrupt
from exatrkx.study.report import CSV_COLUMNS
from exatrkx.study.resources import Basis, estimate
from exatrkx.study.results import OptionRun, ScanPoint, StudyResult
from exatrkx.study.runner import main_setting, server_variants
from exatrkx.util.timing import TimedRun

PLOTS = ("stages.png", "throughput_concurrency.png", "latency.png", "transports.png",
         "server_scan.png")


# ---------------------------------------------------------------------------- no server

def test_lists_are_parsed_sorted_and_checked() -> None:
    assert parse_int_list("4, 1,2,2", "--concurrency") == (1, 2, 4)
    assert parse_int_list("0,5", "--options", (0, 1, 2, 3, 4, 5), minimum=0) == (0, 5)
    assert parse_protocols("shm,grpc,shm") == ("shm", "grpc")
    for text, kwargs in (("", {}), ("1,x", {}), ("0", {}), ("6", {"allowed": (0, 1)})):
        with pytest.raises(InputError):
            parse_int_list(text, "--concurrency", **kwargs)
    with pytest.raises(InputError, match="unknown transport"):
        parse_protocols("grpc,udp")


def test_config_checks_and_quick_settings(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        StudyConfig(events=tmp_path / "absent")
    with pytest.raises(InputError, match="unknown option"):
        StudyConfig(options=(0, 9))
    with pytest.raises(InputError):
        StudyConfig(concurrency=(0,))
    cfg = quick_config(options=(4,))
    assert cfg.timed_options == (0, 4) and cfg.n_events == 10 and cfg.repeats == 1
    main = main_setting(StudyConfig())
    assert main == (DEFAULT_INSTANCES, DEFAULT_BATCHING)
    variants = server_variants(StudyConfig())
    assert variants[0] == main and len(variants) == len(set(variants)) == 4
    assert set(variants) == {(1, False), (1, True), (2, False), (2, True)}
    assert server_variants(cfg) == [main]
    assert server_variants(StudyConfig(main_instances=3, main_batching=False,
                                       instances=(1,))) == [(3, False), (3, True), (1, False),
                                                            (1, True)]
    assert StudyConfig().concurrency == (1, 2, 4, 8, 16)


@pytest.mark.parametrize("args", [["--options", "0,7"], ["--concurrency", "1,two"],
                                  ["--concurrency", "0"], ["--protocols", "grpc,pigeon"]])
def test_bad_input_is_one_line_and_exit_code_2(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["study", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_missing_events_path_is_exit_code_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["study", "--events", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def _raw(count: int, **ns: int) -> dict[str, int]:
    row = {"count": count, "executions": count}
    row.update({f"{k}_ns": ns.get(k, 0) for k in
                ("success", "queue", "compute_input", "compute_infer", "compute_output")})
    return row


def test_overhead_parts_add_up_to_the_mean() -> None:
    run = OptionRun(timed=TimedRun([10.0, 14.0]), request_ms=16.0)
    add_delta(run.stats, {"exatrkx": _raw(1, success=1_000_000)},
              {"exatrkx": _raw(3, success=13_000_000, queue=1_000_000,
                               compute_infer=9_000_000)})
    parts = overhead("4", run)
    assert set(parts) == set(OVERHEAD)
    assert parts["client_compute"] == pytest.approx(12.0 - 8.0)
    assert parts["transfer"] == pytest.approx(8.0 - 6.0)
    assert parts["server_queue"] == pytest.approx(0.5)
    assert parts["server_compute"] == pytest.approx(4.5)
    assert sum(parts.values()) == pytest.approx(12.0)
    assert overhead("0", OptionRun(timed=TimedRun([3.0])))["client_compute"] == 3.0


def test_resource_estimate_scales_with_the_rate() -> None:
    basis = Basis("x", throughput_eps=50.0, server_cpu_ms=20.0, client_cpu_ms=2.0,
                  local_cpu_ms=15.0, local_throughput_eps=60.0, machine_cores=2,
                  mean_hits=1000.0)
    needs = estimate(basis, (100.0, 10_000.0), utilisation=0.5)
    assert [n.servers for n in needs] == [4, 400]
    assert [n.server_cores for n in needs] == [4, 400]
    assert [n.client_cores for n in needs] == [1, 40]
    assert [n.local_cores for n in needs] == [3, 300]
    assert needs[0].network_mbit_s == pytest.approx(100 * 1000 * 20 * 8 / 1e6)


# ---------------------------------------------------------------------------- a real server

def _stubs(marker: str) -> list[int]:
    """Pids of processes (server, backend stubs) whose command line mentions ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and ("triton" in cmd):
            pids.append(int(entry.name))
    return pids


@pytest.fixture()
def random_weights(tmp_path: Path) -> Path:
    cfg = PipelineConfig(radius=0.05, max_neighbours=16)
    return save_models(build_models(cfg, seed=0), cfg, tmp_path / "weights")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_swallowed_interrupt_still_stops_the_study(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    with signals_as_interrupt() as interrupted:
        interrupted()  # nothing came yet
        try:
            os.kill(os.getpid(), sig)
            time.sleep(1.0)  # the handler runs here
        except KeyboardInterrupt:
            pass  # as a library callback or destructor might
        with pytest.raises(KeyboardInterrupt):
            interrupted()
    assert signal.getsignal(sig) is before


def _study(args: list[str], scratch: Path) -> subprocess.Popen[str]:
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(scratch)}  # the server's files land here: a marker
    return subprocess.Popen([sys.executable, "-m", "exatrkx.cli", "study", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.server
@pytest.mark.slow
def test_quick_study_end_to_end(tmp_path: Path, random_weights: Path) -> None:
    out = tmp_path / "out"
    scratch = tmp_path / "scratch"
    t0 = time.monotonic()
    proc = _study(["--quick", "--json", "--out", str(out), "--weights", str(random_weights)],
                  scratch)
    stdout, stderr = proc.communicate(timeout=240)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, stderr[-3000:]
    assert wall < 120, f"--quick took {wall:.0f} s"
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["identical_labels"] is True
    assert set(summary["options"]) == {"0", "1", "2", "3", "4", "5"}
    for key, opt in summary["options"].items():
        assert opt["ms_per_event"] > 0
        assert isinstance(opt["stages_ms"], dict) and opt["stages_ms"]
        assert opt["latency_p50_ms"] > 0 and opt["latency_p95_ms"] >= opt["latency_p50_ms"]
        assert sum(opt["overhead_ms"].values()) == pytest.approx(opt["ms_per_event"],
                                                                 rel=1e-6)
        paired = opt["paired_overhead_ms"]
        assert set(paired) == {"median", "lo", "hi"}
        assert paired["lo"] <= paired["median"] <= paired["hi"]
        if key == "0":
            assert paired == {"median": 0.0, "lo": 0.0, "hi": 0.0}
    assert set(summary["options"]["3"]["stages_ms"]) == {"embed", "build", "filter", "gnn",
                                                         "label"}
    assert set(summary["options"]["4"]["server_ms"]) == {"embed", "build", "filter", "gnn",
                                                         "label"}
    floor = summary["floor"]
    for key in ("hop_ms", "ensemble5_ms", "touch_hop_ms", "touch_ensemble5_ms"):
        assert floor[key] > 0, key
    assert set(summary["concurrency"]) == {"0", "4", "5"}
    assert all(set(levels) == {"1", "2", "8"} and levels["1"]["throughput_eps"] > 0
               for levels in summary["concurrency"].values())
    best = summary["best_served"]
    assert set(best) == {"option", "instances", "batching", "throughput_eps_8"}
    assert best["option"] in (4, 5) and best["throughput_eps_8"] > 0
    assert best["throughput_eps_8"] == max(
        r["throughput_eps"] for r in summary["server_scan"]
        if r["option"] in (4, 5) and r["concurrency"] == 8)
    assert {t["name"].split()[0] for t in summary["targets"]} >= {"best", "S4", "S5"}
    assert summary["transports"] == ["grpc", "http", "shm"]
    perf = summary["perf_analyzer"]
    assert perf["rows"] or perf["reason"]
    assert len(summary["resources"]["table"]) == 4
    assert "S0 in process" in stdout  # the plain-text table
    assert "indicative" in stdout
    if hnl_events_dir() is not None:  # real events timed: simulated ones compared with them
        sim = summary["simulation"]
        assert sim["events"][sim["reference"]] == sim["events"][sim["other"]] == 10
        assert 0 <= sim["quantities"]["r"]["ks"] < 0.2
        assert set(sim["edges_per_hit"]["real"]) == {"build", "filter", "gnn"}
        assert "## Simulated against real events" in (out / "report.md").read_text()
        assert (out / "simulation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    report = (out / "report.md").read_text()
    for section in ("## Service options", "### Floors", "### Targets", "## Transports",
                    "## Throughput scan", "## perf_analyzer", "## Resource estimate"):
        assert section in report
    assert "indicative" in report
    for png in PLOTS:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({png})" in report
    with open(out / "timings.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    main = [r for r in rows if r["phase"] == "main"]
    assert len(main) == 3 * (6 + 4) * summary["events"]  # transports x (options + floors)
    assert {r["phase"] for r in rows} == {"main", "scan"}
    assert not _stubs(str(scratch))


@pytest.mark.server
@pytest.mark.slow
def test_interrupt_stops_the_embedded_server(tmp_path: Path, random_weights: Path) -> None:
    scratch = tmp_path / "scratch"
    # many repeats: the study is still in its main phase when the signal comes, however
    # slowly this test notices the server
    proc = _study(["--quick", "--repeats", "500", "--out", str(tmp_path / "out"), "--weights",
                   str(random_weights), "--no-progress"], scratch)
    try:
        deadline = time.monotonic() + 120
        while len(_stubs(str(scratch))) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            time.sleep(0.5)
        assert _stubs(str(scratch)), "the server never started"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    deadline = time.monotonic() + 15
    while _stubs(str(scratch)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _stubs(str(scratch))


def _point(option: int, conc: int, inst: int, batching: bool, passes: list[float]
           ) -> ScanPoint:
    from exatrkx.contract import Option

    return ScanPoint("scan", Option(option), "grpc", conc, inst, batching,
                     passes_eps=list(passes))


def test_best_served_and_the_targets_follow_the_measurements() -> None:
    from exatrkx.study.analysis import best_served, paired_overheads, targets

    scan = [_point(0, 8, 1, True, [80, 82, 81]), _point(4, 8, 1, True, [70, 71, 60]),
            _point(5, 8, 1, True, [75, 76, 74]), _point(0, 8, 2, False, [90, 90, 90]),
            _point(5, 8, 2, False, [78, 77, 79]), _point(5, 1, 2, False, [99, 99, 99])]
    best = best_served(scan)
    assert best is not None and (best.option, best.instances, best.batching) == (5, 2, False)
    assert best.throughput_eps == 78  # the median of the passes, at 8 in flight
    result = StudyResult(StudyConfig(), server_scan=scan)
    main = {key: OptionRun() for key in ("0", "3", "4", "5")}
    rng = np.random.default_rng(0)
    for i in range(60):
        for _ in range(3):
            base = 20 + rng.uniform(0, 10)  # the load of that moment, shared by all
            main["0"].add(i, base)
            main["3"].add(i, base + 5.0)
            main["4"].add(i, base + 3.0)
            main["5"].add(i, base + 1.0)
    paired = paired_overheads(main, 60)
    assert paired["5"] == pytest.approx([1.0] * 60)
    floors = {"touch_hop": [0.9] * 60, "touch_ensemble5": [2.0] * 60}
    found = targets(result, paired, floors)

    def target(prefix: str) -> dict:
        return next(t for t in found if t["name"].startswith(prefix))

    assert len(found) == 4
    assert target("best")["median"] == pytest.approx(78 / 90)  # beside its own option 0
    assert target("best")["met"] is False
    assert target("S5 paired")["median"] == pytest.approx(1.0 / 0.9)
    assert target("S5 paired")["met"]
    assert target("S4 paired")["median"] == pytest.approx(1.5)
    assert not target("S4 paired")["met"] and target("S4 paired")["conclusive"]
    assert target("S4 - S3")["median"] == pytest.approx(-2.0) and target("S4 - S3")["met"]
