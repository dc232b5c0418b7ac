"""The multi-server runner's balancing and health handling, with stand-in servers (the real
servers are in tests/serve/test_balance_server.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from exatrkx.errors import InputError, RemoteError
from exatrkx.service.balance import MultiServerRunner, NoServerError, parse_urls
from exatrkx.service.runner import EventResult, EventTiming


class FakeCluster:
    """Stand-in servers: ``up[url]`` says whether one answers; ``delay[url]`` its ms."""

    def __init__(self, urls: list[str]) -> None:
        self.up = dict.fromkeys(urls, True)
        self.delay = dict.fromkeys(urls, 0.0)
        self.refuse = False
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def probe(self, url: str, protocol: str, timeout_s: float) -> bool:
        return self.up[url]

    def factory(self, option: int, url: str, protocol: str, **kwargs: Any) -> FakeRunner:
        if not self.up[url]:
            raise RemoteError(f"no ready Triton server at {url}")
        return FakeRunner(self, url)


class FakeRunner:
    def __init__(self, cluster: FakeCluster, url: str) -> None:
        self.cluster, self.url = cluster, url

    def run(self, features: np.ndarray) -> EventResult:
        c = self.cluster
        with c.lock:
            c.calls.append(self.url)
        time.sleep(c.delay[self.url] / 1e3)
        if not c.up[self.url]:
            raise RemoteError(f"exatrkx: cannot reach {self.url}")
        if c.refuse:
            raise RemoteError("exatrkx: too many hits")
        return EventResult(np.arange(len(features)), EventTiming(c.delay[self.url]))

    def close(self) -> None:
        pass


URLS = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]


def _runner(cluster: FakeCluster, **kwargs: Any) -> MultiServerRunner:
    return MultiServerRunner(list(cluster.up), 5, probe=cluster.probe,
                             runner_factory=cluster.factory, health_interval_s=0, **kwargs)


def _events(n: int) -> list[np.ndarray]:
    return [np.zeros((5 + i, 3), np.float32) for i in range(n)]


def test_round_robin_takes_the_servers_in_turn() -> None:
    cluster = FakeCluster(URLS)
    with _runner(cluster, policy="round_robin") as runner:
        results = runner.run_many(_events(9))
        assert [len(r.labels) for r in results] == [5 + i for i in range(9)]
        assert runner.served() == dict.fromkeys(URLS, 3)


def test_least_outstanding_avoids_the_slow_server() -> None:
    cluster = FakeCluster(URLS[:2])
    cluster.delay = {URLS[0]: 40.0, URLS[1]: 2.0}
    with _runner(cluster, policy="least", concurrency=2) as runner:
        runner.run_many(_events(24))
        served = runner.served()
    assert served[URLS[1]] > 2 * served[URLS[0]], served


def test_a_dead_server_is_dropped_and_its_events_retried_elsewhere() -> None:
    cluster = FakeCluster(URLS)
    with _runner(cluster, concurrency=3) as runner:
        runner.run_many(_events(3))
        cluster.up[URLS[1]] = False  # dies with events about to go there
        results = runner.run_many(_events(12))
        assert len(results) == 12 and all(len(r.labels) for r in results)
        assert runner.alive_urls == [URLS[0], URLS[2]]
        assert runner.retries >= 1
        before = runner.served()[URLS[1]]
        runner.run_many(_events(6))
        assert runner.served()[URLS[1]] == before  # nothing more goes there
        cluster.up[URLS[1]] = True  # back: the health check takes it in again
        assert runner.check_health() == URLS


def test_the_health_thread_drops_and_revives_servers() -> None:
    cluster = FakeCluster(URLS[:2])
    with MultiServerRunner(URLS[:2], 4, probe=cluster.probe, runner_factory=cluster.factory,
                           health_interval_s=0.02) as runner:
        cluster.up[URLS[0]] = False
        deadline = time.monotonic() + 2.0
        while runner.alive_urls != [URLS[1]] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.alive_urls == [URLS[1]]
        cluster.up[URLS[0]] = True
        while runner.alive_urls != URLS[:2] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.alive_urls == URLS[:2]


def test_a_server_down_at_start_joins_when_ready() -> None:
    cluster = FakeCluster(URLS[:2])
    cluster.up[URLS[0]] = False
    with _runner(cluster) as runner:
        assert runner.alive_urls == [URLS[1]]
        cluster.up[URLS[0]] = True
        assert runner.check_health() == URLS[:2]
        runner.run_many(_events(4))
        assert runner.served()[URLS[0]] > 0


def test_refusals_of_a_ready_server_are_not_retried() -> None:
    cluster = FakeCluster(URLS[:2])
    with _runner(cluster) as runner:
        cluster.refuse = True
        with pytest.raises(RemoteError, match="too many hits"):
            runner.run(np.zeros((4, 3), np.float32))
        assert len(cluster.calls) == 1 and runner.alive_urls == URLS[:2]


def test_all_servers_down() -> None:
    cluster = FakeCluster(URLS[:2])
    cluster.up = dict.fromkeys(URLS[:2], False)
    with pytest.raises(NoServerError):
        _runner(cluster)
    cluster.up[URLS[0]] = True
    with _runner(cluster) as runner:
        cluster.up[URLS[0]] = False
        with pytest.raises(RemoteError):
            runner.run(np.zeros((4, 3), np.float32))


@pytest.mark.parametrize("kwargs", [{"policy": "random"}, {"concurrency": 0}])
def test_bad_settings(kwargs: dict[str, Any]) -> None:
    cluster = FakeCluster(URLS[:1])
    with pytest.raises(InputError):
        _runner(cluster, **kwargs)
    with pytest.raises(InputError):
        MultiServerRunner([], 5)
    with pytest.raises(InputError):
        MultiServerRunner(URLS[:1], 0)
    with pytest.raises(InputError):
        MultiServerRunner([URLS[0], URLS[0]], 5)
    assert parse_urls(" a:1, b:2 ,") == ["a:1", "b:2"]
    with pytest.raises(InputError):
        parse_urls(" , ")
