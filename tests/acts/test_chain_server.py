"""The chain against a real Triton server: options 4 and 5 give option 0's tracks; a server
that goes away mid-chain leaves the rest for --resume, as ``reconstruct`` does."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exatrkx.acts.app import run_chain
from exatrkx.serve import ServerConfig, TritonServer, write_repository
from exatrkx.service.runner import EventResult, make_runner, warm_up

pytestmark = [pytest.mark.server, pytest.mark.slow]
PHYSICS = ("track_efficiency", "track_efficiency_displaced", "fake_rate", "duplicate_rate",
           "pt_resolution", "d0_resolution_mm", "fit_failures", "counts")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """Triton with the shipped weights, on free ports."""
    repo = write_repository(tmp_path_factory.mktemp("chain-repo") / "models")
    config = ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=300,
                          exit_timeout=2, restricted=())
    with TritonServer(repo, config) as srv:
        yield srv


def same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def test_served_options_give_the_in_process_tracks(server: TritonServer, acts_events: Path,
                                                   displaced_acts_events: Path,
                                                   acts_detector: Any) -> None:
    for events in (acts_events, displaced_acts_events):
        local = run_chain(events, "gnn", 0, detector=acts_detector)
        assert local.exit_code == 0
        for option in (4, 5):
            served = run_chain(events, "gnn", option, url=server.grpc_url,
                               detector=acts_detector)
            assert served.exit_code == 0, served.errors
            a, b = served.summary["finders"]["gnn"], local.summary["finders"]["gnn"]
            for key in PHYSICS:
                assert same(a[key], b[key]), (option, key, a[key], b[key])
            assert a["ms_parts"]["labels_ms"] > 0


class StopsTheServer:
    """A real option-5 runner; the server is stopped just before the ``at``-th event."""

    def __init__(self, server: TritonServer, at: int) -> None:
        self.server, self.at, self.calls = server, at, 0
        self.runner = make_runner(5, server.grpc_url, retries=1, timeout_s=10)
        warm_up(self.runner)

    def run(self, features: np.ndarray, keep_graph: bool = False) -> EventResult:
        self.calls += 1
        if self.calls == self.at:
            self.server.stop()
        return self.runner.run(features, keep_graph)


def test_server_going_away_mid_chain_then_resume(server: TritonServer, acts_events: Path,
                                                 tmp_path: Path, acts_detector: Any) -> None:
    out = tmp_path / "out"
    stops = StopsTheServer(server, at=3)
    try:
        report = run_chain(acts_events, out=out, runner=stops, detector=acts_detector)
    finally:
        stops.runner.close()
        if not server.is_ready():
            server.start()
    assert report.exit_code == 3
    assert "event000000002" in report.errors[0]
    assert report.errors[1] == ("1 more events not attempted: the server is unavailable "
                                "(rerun with --resume)")
    assert [Path(p).name for p in report.summary["unprocessed"]] == [
        "event000000002", "event000000003"]
    assert stops.calls == 3
    assert sorted(p.name for p in out.iterdir()) == [
        "event000000000-chain.json", "event000000001-chain.json"]
    resumed = run_chain(acts_events, "gnn,ckf", 5, url=server.grpc_url, out=out, resume=True,
                        detector=acts_detector)
    assert resumed.exit_code == 0, resumed.errors
    s = resumed.summary
    assert (s["events"], s["skipped"], s["failed"]) == (4, 2, 0)
