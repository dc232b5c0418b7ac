"""Atomic writes, JSON without NaN, process-group accounting, the timed-run record."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from exatrkx.contract import Option
from exatrkx.util.files import atomic_write, atomic_write_text
from exatrkx.util.jsonsafe import dumps, jsonable
from exatrkx.util.procfs import group_cpu_s, group_processes, group_rss
from exatrkx.util.timing import TimedRun, percentile


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "a" / "f.txt"
    atomic_write_text(path, "old\n")

    def broken(fh: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]  # no temp file left
    atomic_write(path, lambda fh: fh.write(b"\x00new"), binary=True)
    assert path.read_bytes() == b"\x00new"


def test_json_is_standard() -> None:
    value = {"a": math.nan, "b": [np.float32(1.5), math.inf, -math.inf], 3: np.int64(7),
             "o": Option(4), "p": Path("/x"), "arr": np.arange(3)}
    assert jsonable(value) == {"a": None, "b": [1.5, None, None], "3": 7, "o": 4, "p": "/x",
                               "arr": [0, 1, 2]}
    text = dumps(value)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["b"] == [1.5, None, None]


def test_timed_run_figures() -> None:
    run = TimedRun([10.0, 20.0, 30.0, 40.0], wall_s=0.5)
    assert run.events == 4
    assert run.throughput_eps == pytest.approx(8.0)
    assert run.latency_mean_ms == pytest.approx(25.0)
    assert run.latency_ms(50) == pytest.approx(25.0)
    summary = run.summary()
    assert set(summary) >= {"events", "wall_s", "throughput_eps", "latency_mean_ms",
                            "latency_p50_ms", "latency_p95_ms"}
    empty = TimedRun()
    assert math.isnan(empty.throughput_eps) and math.isnan(empty.latency_mean_ms)
    assert math.isnan(percentile([], 50))
    run.extend(TimedRun([50.0], wall_s=0.5, failures=1))
    assert run.events == 5 and run.wall_s == 1.0 and run.failures == 1


def test_process_group_accounting() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nx = 0\n"
                              "t = time.time()\nwhile time.time() - t < 0.3: x += 1\n"
                              "time.sleep(30)"], start_new_session=True)
    try:
        time.sleep(0.6)
        procs = list(group_processes(child.pid))
        assert [p.pid for p in procs] == [child.pid]
        assert procs[0].program.startswith("python")
        assert group_cpu_s(child.pid) > 0.05
        rss = group_rss(child.pid)
        assert rss["processes"] == 1 and sum(v for k, v in rss.items()
                                             if k != "processes") > 1 << 20
    finally:
        os.killpg(child.pid, 9)
        child.wait()
    assert group_rss(child.pid) == {}
