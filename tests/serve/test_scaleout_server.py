"""Scale-out against real Triton servers: events spread over two servers, a server stopped in
the middle of a run (its events go to the other), and the network scan through the delay
proxy (labels unchanged, the added latency at least the round trips times the delay)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from exatrkx.contract import OPTIONS, Option
from exatrkx.serve import TritonServer
from exatrkx.service.balance import MultiServerRunner
from exatrkx.service.runner import make_runner
from exatrkx.study.network import network_rows, run_network_scan
from exatrkx.study.scaleout import measure_servers, started_servers

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def second_server(repository: Path, server_config: Callable[..., object]) -> Iterator[
        TritonServer]:
    srv = TritonServer(repository, server_config())  # type: ignore[arg-type]
    with srv:
        yield srv


def _reference(url: str, events: list[np.ndarray]) -> list[np.ndarray]:
    with make_runner(5, url) as runner:
        return [runner.run(x).labels for x in events]


def test_scan_point_over_two_servers(server: TritonServer, second_server: TritonServer,
                                     events: list[np.ndarray], weights_dir: Path) -> None:
    feats = [x for x in events if len(x) <= 1000][:4]
    reference = _reference(server.grpc_url, feats)
    point = measure_servers([server.grpc_url, second_server.grpc_url], 5, feats, reference, 2,
                            passes=2, warmup=1, weights=weights_dir)
    assert point.events == 2 * len(feats) and point.mismatched == 0
    assert sum(point.per_server) == point.events and all(point.per_server)
    assert point.timed.throughput_eps > 0


def test_started_servers_are_stopped(repository: Path) -> None:
    from exatrkx.service.balance import probe_ready

    with started_servers(repository, 1) as urls:
        assert probe_ready(urls[0])
    assert not probe_ready(urls[0])


def test_events_spread_over_two_servers_and_survive_one_dying(
        server: TritonServer, second_server: TritonServer, events: list[np.ndarray]) -> None:
    feats = [x for x in events if len(x) <= 1000] * 3
    reference = _reference(server.grpc_url, feats)
    urls = [server.grpc_url, second_server.grpc_url]
    with MultiServerRunner(urls, 5, concurrency=2, health_interval_s=0) as runner:
        results = runner.run_many(feats)
        assert all(np.array_equal(r.labels, ref) for r, ref in
                   zip(results, reference, strict=True))
        assert all(n > 0 for n in runner.served().values()), runner.served()
        second_server.stop()  # in the middle of the runner's life
        results = runner.run_many(feats)
        assert all(np.array_equal(r.labels, ref) for r, ref in
                   zip(results, reference, strict=True))
        assert runner.alive_urls == [server.grpc_url]


def test_network_scan_adds_the_round_trips(server: TritonServer, events: list[np.ndarray],
                                           weights_dir: Path) -> None:
    x = next(e for e in events if 30 <= len(e) <= 200)
    feats = [x] * 4
    reference = _reference(server.grpc_url, feats)
    points = run_network_scan(server.grpc_url, feats, reference, (0.0, 2.5), (1.0,),
                              options=(3, 5), in_flight=2, warmup=1, weights=weights_dir)
    rows = network_rows(points)
    assert len(rows) == 2 * 4  # (0, none), (2.5, none), (0, 1G), (2.5, 1G)
    assert all(r["identical_labels"] for r in rows)
    assert all(r["bytes_up_per_event"] > 0 and r["bytes_down_per_event"] > 0 for r in rows)
    by = {(p.option, p.delay_ms, p.bandwidth_gbps): p for p in points}
    for option in (3, 5):
        # every event waits at least its round trips through the delayed proxy (a bound
        # that holds however busy the machine is)
        fastest = min(by[(option, 2.5, 0.0)].single.latencies_ms)
        trips = OPTIONS[Option(option)].requests_per_event
        assert fastest >= trips * 2 * 2.5, (option, fastest)
