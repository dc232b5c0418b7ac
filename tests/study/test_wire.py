"""Wire-level robustness against a real server (small versions of benchmarks/fuzz_test.py):
bad bytes on both ports, 1000 connections, stalled clients; the server stays ready and
answers the next good request right. The two requests that crashed Triton 2.51 through the
open HTTP inference endpoint are now refused before their body is read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from exatrkx.contract import API_KEY_HEADER, on_wire
from exatrkx.serve import ServerConfig, TritonServer
from exatrkx.serve.keys import restriction
from exatrkx.serve.repository import write_floor_repository
from exatrkx.service.transport import ClientConfig, Transport
from exatrkx.study.wire import CASES, CRASHERS, HTTP_REQUESTS, Target, check, raw_http, run_cases

pytestmark = pytest.mark.server

X = np.random.default_rng(2).random((10, 3), dtype=np.float32)
XW = on_wire(X)  # as standard clients send it: with the leading event dimension
KEY = "exatrkx-wire-test-key-0123"


def server_config(**settings: object) -> ServerConfig:
    return ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=120,
                        api_key=KEY, **settings)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_floor_repository(tmp_path_factory.mktemp("wire") / "models")


@pytest.fixture(scope="module")
def target(floor: Path) -> Iterator[tuple[TritonServer, Target]]:
    with TritonServer(floor, server_config()) as srv:
        yield srv, Target(srv.grpc_port, srv.http_port, srv.metrics_port, srv.pid,
                          srv.api_key)


def test_targets_are_loopback_only() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
        Target(8001, 8000, host="10.0.0.1")


def test_crash_reproducers_are_refused_before_parsing(
        target: tuple[TritonServer, Target]) -> None:
    srv, t = target
    assert len(CRASHERS) == 2
    for name in CRASHERS:
        for key in (None, "wrong-key-0123456789"):
            seen = raw_http(t, HTTP_REQUESTS[name](t.model), key)
            assert seen["status"] == "HTTP/1.1 403 Forbidden", (name, key, seen)
            assert "restricted" in seen["body"] and API_KEY_HEADER in seen["body"]
            assert check(t)["ok"], name
    # standard clients: HTTP inference needs the key, gRPC inference is open
    tensor = httpclient.InferInput("FEATURES", list(XW.shape), "FP32")
    tensor.set_data_from_numpy(XW)
    with httpclient.InferenceServerClient(srv.http_url) as http:
        with pytest.raises(InferenceServerException, match="restricted"):
            http.infer(t.model, [tensor])
        out = http.infer(t.model, [tensor], headers={API_KEY_HEADER: srv.api_key})
        np.testing.assert_array_equal(out.as_numpy("OUTPUT"), XW)
    gtensor = grpcclient.InferInput("FEATURES", list(XW.shape), "FP32")
    gtensor.set_data_from_numpy(XW)
    with grpcclient.InferenceServerClient(srv.grpc_url) as grpc:
        np.testing.assert_array_equal(grpc.infer(t.model, [gtensor]).as_numpy("OUTPUT"), XW)
    # the package's client sends the key on both protocols
    for protocol, url in (("grpc", srv.grpc_url), ("http", srv.http_url)):
        with Transport(ClientConfig(url=url, protocol=protocol, api_key=KEY)) as transport:
            out = transport.infer(t.model, {"FEATURES": X}, ["OUTPUT"])
            np.testing.assert_array_equal(out["OUTPUT"], X)


def test_inference_key_on_both_protocols(floor: Path) -> None:
    restricted, http_restricted = restriction("all")
    assert "inference" in restricted and http_restricted == ()
    assert restriction("none") == (restriction()[0], ())
    assert restriction("http", open_control=True) == ((), ("inference",))
    with TritonServer(floor, server_config(restricted=restricted,
                                           http_restricted=http_restricted)) as srv:
        tensor = grpcclient.InferInput("FEATURES", list(XW.shape), "FP32")
        tensor.set_data_from_numpy(XW)
        with grpcclient.InferenceServerClient(srv.grpc_url) as grpc:
            with pytest.raises(InferenceServerException, match="restricted"):
                grpc.infer("identity", [tensor])
        for protocol, url in (("grpc", srv.grpc_url), ("http", srv.http_url)):
            with Transport(ClientConfig(url=url, protocol=protocol, api_key=KEY)) as transport:
                out = transport.infer("identity", {"FEATURES": X}, ["OUTPUT"])
                np.testing.assert_array_equal(out["OUTPUT"], X)
            with Transport(ClientConfig(url=url, protocol=protocol, api_key="")) as transport:
                with pytest.raises(Exception, match="restricted"):
                    transport.infer("identity", {"FEATURES": X}, ["OUTPUT"])


@pytest.mark.slow
def test_wire_cases_leave_the_server_answering(target: tuple[TritonServer, Target]) -> None:
    srv, t = target
    results = run_cases(t, scale=0.1)
    before = results["before"]
    assert before["ok"]
    for name in CASES:
        assert name in results, f"the run stopped before {name}"
        assert not results[name].get("server_died"), name
        assert results[name]["after"]["ok"], (name, results[name])
    assert results["1000 connections opened and dropped"]["seen"]["check_while_held"]["ok"]
    assert results["stalled clients"]["seen"]["check_while_stalled"]["ok"]
    for name in CRASHERS:
        assert results["malformed HTTP requests"]["seen"][name]["status"].endswith("403 Forbidden")
    # memory stays bounded (a 13 MiB request may be kept in Triton's pools)
    after = check(t)
    assert after["rss_mb"] < before["rss_mb"] + 300, (before, after)
    assert after["fds"] < before["fds"] + 50, (before, after)
    assert srv.is_ready()
