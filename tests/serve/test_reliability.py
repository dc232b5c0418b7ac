"""Reliability and security against a real server: bad requests of every kind get a named
error and the server keeps answering; the control APIs need the key; a small load test loses
nothing; a dead backend process gives retried, explicit errors and a restart recovers it."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from exatrkx.contract import API_KEY_HEADER, GRPC_API_KEY_HEADER
from exatrkx.errors import RemoteError
from exatrkx.serve import ServerConfig, TritonServer
from exatrkx.service.runner import make_runner
from exatrkx.service.transport import ClientConfig, Transport
from exatrkx.study.loadtest import run_load
from exatrkx.util.procfs import group_rss

pytestmark = pytest.mark.server

GOOD = np.random.default_rng(11).random((80, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def good_labels(weights_dir: Path) -> np.ndarray:
    with make_runner(0, weights_dir=weights_dir) as local:
        return local.run(GOOD).labels


def grpc_infer(server: TritonServer, model: str, inputs: dict[str, np.ndarray],
               output: str) -> np.ndarray:
    """One plain tritonclient request of one event (the contract's leading event dimension
    added here, dropped from the answer), no key."""
    types = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64",
             np.dtype(np.int32): "INT32", np.dtype(np.float64): "FP64"}
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        tensors = []
        for name, event in inputs.items():
            array = event[None]
            tensor = grpcclient.InferInput(name, list(array.shape), types[array.dtype])
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        answer = client.infer(model, tensors).as_numpy(output)
        assert answer.shape[0] == 1, answer.shape
        return answer[0]
    finally:
        client.close()


def assert_still_answers(server: TritonServer, good_labels: np.ndarray) -> None:
    assert server.is_ready()
    for model in ("exatrkx", "exatrkx_pipeline"):
        got = grpc_infer(server, model, {"FEATURES": GOOD}, "LABELS")
        np.testing.assert_array_equal(got, good_labels)


EDGES = np.array([[5, 9, 40], [1, 5, 2]], np.int64)
SCORES = np.full(3, 0.9, np.float32)


@pytest.mark.parametrize(("model", "inputs", "message"), [
    ("build", {"EMBEDDING": np.full((10, 8), np.nan, np.float32)}, "EMBEDDING has a non-finite"),
    ("build", {"EMBEDDING": np.zeros((4001, 8), np.float32)}, "limit of 4000"),
    ("filter", {"FEATURES": GOOD, "EDGES": np.array([[80], [0]])}, "outside 0..79"),
    ("filter", {"FEATURES": GOOD, "EDGES": np.zeros((2, 80 * 64 + 1), np.int64)},
     "more than 16 per hit|more than 64 per hit"),
    ("filter", {"FEATURES": np.zeros((0, 3), np.float32), "EDGES": EDGES}, "empty"),
    ("gnn", {"FEATURES": GOOD, "EDGES_KEPT": np.array([[-1], [0]])}, "outside"),
    ("gnn", {"FEATURES": np.where(GOOD > 0.99, np.inf, GOOD).astype(np.float32),
             "EDGES_KEPT": EDGES}, "non-finite"),
    ("label", {"FEATURES": GOOD, "EDGES_KEPT": EDGES,
               "SCORES": np.array([0.5, np.nan, 0.5], np.float32)}, "SCORES has a NaN"),
    ("label", {"FEATURES": GOOD, "EDGES_KEPT": EDGES, "SCORES": SCORES[:2]},
     "SCORES has 2 values for 3 edges"),
    ("filter", {"FEATURES": GOOD, "EDGES": EDGES.astype(np.int32)}, "INT32|datatype"),
    ("gnn", {"FEATURES": GOOD, "EDGES_KEPT": np.zeros((3, 2), np.int64)}, "shape"),
])
def test_stage_models_refuse_bad_tensors(server: TritonServer, good_labels: np.ndarray,
                                         model: str, inputs: dict[str, np.ndarray],
                                         message: str) -> None:
    output = {"build": "EDGES", "filter": "EDGES_KEPT", "gnn": "SCORES", "label": "LABELS"}
    with pytest.raises(InferenceServerException, match=message) as info:
        grpc_infer(server, model, inputs, output[model])
    assert "INVALID_ARG" in str(info.value.status())
    assert_still_answers(server, good_labels)


@pytest.mark.parametrize("model", ["embed", "exatrkx", "exatrkx_pipeline"])
def test_one_hit_is_an_event_without_tracks(server: TritonServer, model: str) -> None:
    """As in process: one hit makes no edge, so its label is -1 (no error)."""
    one = GOOD[:1]
    if model == "embed":
        assert grpc_infer(server, model, {"FEATURES": one}, "EMBEDDING").shape == (1, 8)
    else:
        np.testing.assert_array_equal(grpc_infer(server, model, {"FEATURES": one}, "LABELS"),
                                      [-1])


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_requests_that_do_not_parse(server: TritonServer, good_labels: np.ndarray) -> None:
    url = f"http://{server.http_url}/v2/models/exatrkx_pipeline/infer"
    feats = {"name": "FEATURES", "shape": [1, 2, 3], "datatype": "FP32"}
    cases = [
        (b"{not json", {"Content-Type": "application/json"}),
        (b"\x00\xff" * 50, {}),
        (json.dumps({"inputs": [{**feats, "data": [1.0, 2.0]}]}).encode(), {}),  # 2 of 6
        (json.dumps({"inputs": [{**feats, "data": ["a"] * 6}]}).encode(), {}),
        (json.dumps({"inputs": [{**feats, "shape": [1, -4, 3], "data": [1.0] * 6}]}).encode(),
         {}),
        # binary tensor shorter than its header says
        (json.dumps({"inputs": [{**feats, "parameters": {"binary_data_size": 24}}]}).encode()
         + b"\x00" * 8, {"Inference-Header-Content-Length": "0"}),
    ]
    for body, headers in cases:
        if "Inference-Header-Content-Length" in headers:
            headers = {"Inference-Header-Content-Length": str(len(body) - 8)}
        # HTTP inference needs the key: without it Triton answers 403 before parsing
        assert _post(url, body, headers)[0] == 403
        code, text = _post(url, body, {**headers, API_KEY_HEADER: server.api_key or ""})
        # Triton answers a body it cannot parse with 500, a size mismatch with 400
        assert code in (400, 500), (body[:60], code, text)
        assert re.search(r"parse|size", json.loads(text)["error"]), text
    # gRPC: raw bytes that do not match the declared shape
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        tensor = grpcclient.InferInput("FEATURES", [1, 4, 3], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 4, 3), np.float32))
        tensor._raw_content = b"\x00" * 20  # 20 bytes for a 48-byte tensor
        with pytest.raises(InferenceServerException, match=r"(?i)size|bytes"):
            client.infer("exatrkx", [tensor])
    finally:
        client.close()
    assert_still_answers(server, good_labels)


# ---------------------------------------------------------------------------- security

def test_control_apis_need_the_key(server: TritonServer, client_api_key: str) -> None:
    assert server.api_key == client_api_key
    assert server.headers == {API_KEY_HEADER: client_api_key}
    grpc_plain = grpcclient.InferenceServerClient(server.grpc_url)
    http_plain = httpclient.InferenceServerClient(server.http_url)
    try:
        refused: list[Callable[[], object]] = [
            grpc_plain.get_inference_statistics,
            lambda: grpc_plain.get_inference_statistics(
                headers={GRPC_API_KEY_HEADER: "wrong-key-0123456789"}),
            lambda: grpc_plain.register_system_shared_memory("x", "/x", 64),
            grpc_plain.get_system_shared_memory_status,
            grpc_plain.get_log_settings,
            grpc_plain.get_trace_settings,
            grpc_plain.get_model_repository_index,
            lambda: grpc_plain.unload_model("exatrkx"),
            http_plain.get_inference_statistics,
            lambda: http_plain.update_log_settings({"log_verbose_level": 1}),
            lambda: http_plain.load_model("exatrkx"),
        ]
        for call in refused:
            with pytest.raises(InferenceServerException, match="restricted"):
                call()
        # health, metadata and gRPC inference stay open to standard clients
        assert grpc_plain.is_server_ready() and http_plain.is_model_ready("exatrkx")
        np.testing.assert_array_equal(
            grpc_infer(server, "exatrkx_pipeline", {"FEATURES": GOOD}, "LABELS").shape, (80,))
        assert grpc_plain.get_model_metadata("exatrkx").name == "exatrkx"
        # with the key the control APIs answer, but loading stays off
        key = {GRPC_API_KEY_HEADER: client_api_key}
        assert grpc_plain.get_inference_statistics(headers=key) is not None
        with pytest.raises(InferenceServerException, match="not allowed"):
            grpc_plain.unload_model("exatrkx", headers=key)
    finally:
        grpc_plain.close()
        http_plain.close()
    # the project's client sends the key (from the config, else $EXATRKX_API_KEY)
    for protocol, url in (("grpc", server.grpc_url), ("http", server.http_url)):
        with Transport(ClientConfig(url=url, protocol=protocol)) as transport:
            assert "exatrkx" in transport.statistics()
        with Transport(ClientConfig(url=url, protocol=protocol, api_key="")) as transport:
            with pytest.raises(RemoteError, match="restricted") as info:
                transport.statistics()
            assert not info.value.transient
        with Transport(ClientConfig(url=url, protocol=protocol, api_key=client_api_key,
                                    shared_memory=True)) as transport:
            out = transport.infer("exatrkx_pipeline", {"FEATURES": GOOD}, ["LABELS"])
            assert out["LABELS"].shape == (80,)
    assert server.is_ready()


def test_launcher_defaults(tmp_path: Path) -> None:
    from exatrkx.errors import InputError
    from exatrkx.serve.keys import is_loopback

    cfg = ServerConfig()
    assert cfg.host == "127.0.0.1" and is_loopback(cfg.host) and not is_loopback("0.0.0.0")
    one, two = TritonServer(tmp_path, cfg), TritonServer(tmp_path, cfg)
    assert one.api_key and two.api_key and one.api_key != two.api_key
    args = one.command(tmp_path)
    assert "--model-control-mode=none" in args
    control = "model-repository,shared-memory,statistics,trace,logging"
    assert f"--grpc-restricted-protocol={control}:{API_KEY_HEADER}={one.api_key}" in args
    # HTTP inference too: one malformed JSON request crashes Triton 2.51's HTTP endpoint
    assert f"--http-restricted-api={control},inference:{API_KEY_HEADER}={one.api_key}" in args
    assert "--http-address=127.0.0.1" in args
    http_only = TritonServer(tmp_path, ServerConfig(restricted=()))
    assert http_only.api_key and not any("grpc-restricted" in a
                                         for a in http_only.command(tmp_path))
    assert (f"--http-restricted-api=inference:{API_KEY_HEADER}={http_only.api_key}"
            in http_only.command(tmp_path))
    open_server = TritonServer(tmp_path, ServerConfig(restricted=(), http_restricted=()))
    assert open_server.api_key is None and open_server.headers == {}
    assert not any("restricted" in a for a in open_server.command(tmp_path))
    with pytest.raises(InputError, match="16 to 256"):
        ServerConfig(api_key="short")
    with pytest.raises(InputError, match="unknown Triton API"):
        ServerConfig(restricted=("inference", "everything"))


# ---------------------------------------------------------------------------- load

def test_concurrent_clients_lose_nothing(server: TritonServer, weights_dir: Path,
                                         events: list[np.ndarray]) -> None:
    with make_runner(0, weights_dir=weights_dir) as local:
        reference = [r.labels for r in local.run_many(events)]
    rss_before = group_rss(server.pid or -1)
    for option in (4, 5):
        result = run_load(server.grpc_url, events, reference, option, clients=8, rounds=2)
        assert result.ok, (result.errors[:3], result.mismatches[:3])
        assert result.requests == 2 * len(events) and result.resent == 0
    rss = group_rss(server.pid or -1)
    assert rss["tritonserver"] > 0 and rss["triton_python_backend_stub"] > 0
    assert rss["processes"] == rss_before["processes"]


# ---------------------------------------------------------------------------- faults

def test_dead_backend_process_gives_retried_errors_and_a_restart_recovers(
        tmp_path: Path, server_config: Callable[..., ServerConfig]) -> None:
    from exatrkx.serve.repository import write_floor_repository

    repo = write_floor_repository(tmp_path / "floor")
    x = np.ones((20, 3), np.float32)
    with TritonServer(repo, server_config(exit_timeout=1)) as srv:
        stubs = srv.stub_pids()
        assert stubs and srv.dead_stubs() == []
        config = ClientConfig(url=srv.grpc_url, retries=2, backoff_s=0.01, timeout_s=10)
        with Transport(config) as transport:
            transport.infer("identity", {"FEATURES": x}, ["OUTPUT"])
            os.kill(stubs[0], signal.SIGKILL)
            deadline = time.monotonic() + 10
            while srv.dead_stubs() != stubs[:1] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert srv.dead_stubs() == stubs[:1]
            with pytest.raises(RemoteError, match="not healthy") as info:
                transport.infer("identity", {"FEATURES": x}, ["OUTPUT"])
            assert info.value.transient and not info.value.unreachable
            assert transport.resent == 2
            ports = (srv.grpc_port, srv.http_port)
            srv.restart()
            assert (srv.grpc_port, srv.http_port) == ports and srv.dead_stubs() == []
            out = transport.infer("identity", {"FEATURES": x}, ["OUTPUT"])
            np.testing.assert_array_equal(out["OUTPUT"], x)
        srv.stop()
        with Transport(config) as transport, pytest.raises(RemoteError) as info:
            transport.infer("identity", {"FEATURES": x}, ["OUTPUT"])
        assert info.value.unreachable


def test_shared_memory_is_unregistered_right_after_a_response(server: TritonServer) -> None:
    """Triton may refuse an unregister right after its response ("currently in use"): the
    client retries it, so no registration outlives its transport."""
    in_use = 0
    for _ in range(20):
        transport = Transport(ClientConfig(url=server.grpc_url, shared_memory=True))
        out = transport.infer("exatrkx_pipeline", {"FEATURES": GOOD}, ["LABELS"])
        assert out["LABELS"].shape == (80,)
        transport.close()
        in_use += transport.shm_in_use
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        status = client.get_system_shared_memory_status(
            headers={GRPC_API_KEY_HEADER: server.api_key or ""}, as_json=True)
    finally:
        client.close()
    assert not status.get("regions"), (status, in_use)
