"""The chain application: bad events cost one line each, never the run; an empty event is
counted; a server that goes away leaves the rest for --resume, which completes the run."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from exatrkx.acts.app import load_result, parse_finders, result_path, run_chain
from exatrkx.acts.evaluate import CONTRACT_KEYS, EventResult
from exatrkx.errors import ExatrkxError, InputError, RejectedInput, ServerUnavailable

PHYSICS = ("track_efficiency", "track_efficiency_displaced", "fake_rate", "duplicate_rate",
           "pt_resolution", "d0_resolution_mm", "fit_failures", "reconstructable")


def copy_events(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.glob("event*.csv"):
        shutil.copy(f, dst / f.name)
    return dst


def test_bad_events_are_one_line_each_and_the_others_run(tmp_path: Path, acts_events: Path,
                                                         truth_runner: Any,
                                                         acts_detector: Any) -> None:
    events = copy_events(acts_events, tmp_path / "events")
    (events / "event000000001-truth.csv").unlink()
    hits = events / "event000000002-hits.csv"
    lines = hits.read_text().splitlines()
    cells = lines[5].split(",")
    cells[-1] = "99999"  # module_id
    lines[5] = ",".join(cells)
    hits.write_text("\n".join(lines) + "\n")
    broken = events / "event000000003-hits.csv"
    lines3 = broken.read_text().splitlines()
    lines3[2] = "1,2,abc,4,8,2,1"
    broken.write_text("\n".join(lines3) + "\n")
    for what, header in (("hits", "hit_id,x,y,z,volume_id,layer_id,module_id"),
                         ("truth", "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight"),
                         ("particles", "particle_id,particle_type,vx,vy,vz,px,py,pz,q,nhits")):
        (events / f"event000000004-{what}.csv").write_text(header + "\n")
    report = run_chain(events, runner=truth_runner, detector=acts_detector)
    assert report.exit_code == 2
    assert len(report.errors) == 3
    for n, words in ((1, "needs truth"), (2, "no module of ACTS' generic detector"),
                     (3, "event000000003-hits.csv:3")):
        message = report.errors[n - 1]
        assert f"event00000000{n}" in message and words in message, message
        assert "\n" not in message
    s = report.summary
    assert (s["events"], s["failed"], s["empty_events"]) == (2, 3, 1)  # events 0 and 4
    assert [Path(p).name for p in s["unprocessed"]] == [f"event00000000{n}" for n in (1, 2, 3)]
    for name in ("gnn", "ckf"):
        assert s["finders"][name]["events"] == 2
        assert set(CONTRACT_KEYS) <= set(s["finders"][name])
    assert s["finders"]["gnn"]["track_efficiency"] >= 0.9


@pytest.mark.parametrize(("error", "code", "words"), [
    (lambda: RejectedInput("the server refused FEATURES: too many hits"), 2, "refused"),
    (lambda: ZeroDivisionError("a bug"), 1, "the gnn finder failed (ZeroDivisionError: a bug)"),
])
def test_a_finder_failure_fails_its_event_only(acts_events: Path, truth_runner: Any,
                                               failing: Any, acts_detector: Any, error: Any,
                                               code: int, words: str) -> None:
    runner = failing(truth_runner, lambda n: n == 2, error)
    report = run_chain(acts_events, runner=runner, detector=acts_detector)
    assert report.exit_code == code
    assert len(report.errors) == 1 and words in report.errors[0]
    assert "event000000001" in report.errors[0]
    assert report.summary["events"] == 3 and runner.calls == 4


def test_server_gone_then_resume(tmp_path: Path, acts_events: Path, truth_runner: Any,
                                 failing: Any, acts_detector: Any) -> None:
    out = tmp_path / "out"
    gone = failing(truth_runner, lambda n: n >= 2,
                   lambda: ServerUnavailable("no ready Triton server at 127.0.0.1:1 (grpc)"))
    report = run_chain(acts_events, out=out, runner=gone, detector=acts_detector)
    assert report.exit_code == 3
    assert gone.calls == 2  # nothing sent after the server went away
    assert "event000000001" in report.errors[0] and "no ready Triton" in report.errors[0]
    assert report.errors[1] == ("2 more events not attempted: the server is unavailable "
                                "(rerun with --resume)")
    assert [Path(p).name for p in report.summary["unprocessed"]] == [
        "event000000001", "event000000002", "event000000003"]
    assert sorted(p.name for p in out.iterdir()) == ["event000000000-chain.json"]
    with pytest.raises(InputError, match="--resume needs --out"):
        run_chain(acts_events, resume=True, runner=truth_runner, detector=acts_detector)
    before = truth_runner.calls
    resumed = run_chain(acts_events, out=out, resume=True, runner=truth_runner,
                        detector=acts_detector)
    assert resumed.exit_code == 0 and resumed.errors == []
    assert truth_runner.calls - before == 3
    s = resumed.summary
    assert (s["events"], s["skipped"], s["failed"], s["unprocessed"]) == (4, 1, 0, [])
    assert s["finders"]["gnn"]["timed_events"] == 3  # the earlier event is scored, not timed
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary file left"
    full = run_chain(acts_events, runner=truth_runner, detector=acts_detector).summary
    for name in ("gnn", "ckf"):
        for key in PHYSICS:
            a, b = s["finders"][name][key], full["finders"][name][key]
            assert a == b or (math.isnan(a) and math.isnan(b)), (name, key, a, b)


def test_results_round_trip_and_resume_needs_every_finder(tmp_path: Path, acts_events: Path,
                                                          acts_detector: Any) -> None:
    out = tmp_path / "out"
    report = run_chain(acts_events, finders="ckf", out=out, detector=acts_detector)
    assert report.exit_code == 0 and report.summary["option"] is None
    path = result_path(out, next(iter(sorted(acts_events.glob("*-hits.csv")))).with_name(
        "event000000000"))
    data = json.loads(path.read_text())
    again = EventResult.from_json(data)
    assert again.to_json() == data and not again.timed
    assert load_result(path, ["ckf"]) is not None
    assert load_result(path, ["gnn", "ckf"]) is None  # a result without gnn is redone
    path.write_text("{not json")
    assert load_result(path, ["ckf"]) is None


def test_finder_names() -> None:
    assert parse_finders("ckf, GNN") == ("gnn", "ckf")
    for bad in ("", "gnn,kf"):
        with pytest.raises(InputError, match="--finders"):
            parse_finders(bad)


def test_exit_codes_of_the_errors() -> None:
    assert ExatrkxError.exit_code == 1 and InputError.exit_code == 2
    assert ServerUnavailable("x").exit_code == 3
