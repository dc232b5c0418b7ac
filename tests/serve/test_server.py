"""A real Triton server with the pipeline's models: every service option gives the same
labels, bad tensors get clear errors and the server keeps answering, statistics work."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from exatrkx.contract import PIPELINE_MODEL, REMOTE_OPTIONS, Option
from exatrkx.errors import RejectedInput, RemoteError, ServerUnavailable
from exatrkx.serve import ServerConfig, TritonServer
from exatrkx.service.runner import make_runner
from exatrkx.service.stats import stats_delta
from exatrkx.service.transport import ClientConfig, Transport

pytestmark = pytest.mark.server

TRANSPORTS = [("grpc", False), ("http", False), ("grpc", True), ("http", True)]


def url(server: TritonServer, protocol: str) -> str:
    return server.grpc_url if protocol == "grpc" else server.http_url


@pytest.fixture(scope="module")
def reference(weights_dir: Path, events: list[np.ndarray]) -> list[np.ndarray]:
    """Option 0 (in-process) labels of the test events."""
    with make_runner(0, weights_dir=weights_dir) as runner:
        return [r.labels for r in runner.run_many(events)]


@pytest.mark.parametrize(("protocol", "shm"), TRANSPORTS)
def test_every_option_gives_the_in_process_labels(
        server: TritonServer, weights_dir: Path, events: list[np.ndarray],
        reference: list[np.ndarray], protocol: str, shm: bool) -> None:
    assert any(len(np.unique(r[r >= 0])) > 1 for r in reference), "events make tracks"
    for option in REMOTE_OPTIONS:
        with make_runner(option, url(server, protocol), protocol, shm,
                         weights_dir=weights_dir) as runner:
            for features, want in zip(events, reference, strict=True):
                result = runner.run(features)
                labels, timing = result.labels, result.timing
                np.testing.assert_array_equal(labels, want, err_msg=f"option {option}")
                assert labels.dtype == np.int64
                assert timing.total_ms > 0


def test_concurrent_events_and_timing_records(server: TritonServer, weights_dir: Path,
                                              events: list[np.ndarray],
                                              reference: list[np.ndarray]) -> None:
    with make_runner(3, server.grpc_url, weights_dir=weights_dir, concurrency=3) as runner:
        before = runner.server_statistics()
        results = runner.run_many(events * 2)
        sent = sum(len(x) >= 2 for x in events * 2)
        # Triton counts a request after its response is on the way: wait for the last ones
        for _ in range(50):
            after = runner.server_statistics()
            if all(after[m]["count"] - before[m]["count"] >= sent
                   for m in ("embed", "build", "filter", "gnn", "label")):
                break
            time.sleep(0.02)
    for result, want in zip(results, reference * 2, strict=True):
        labels, timing = result.labels, result.timing
        np.testing.assert_array_equal(labels, want)
        assert set(timing.stages_ms) == {"embed", "build", "filter", "gnn", "label"}
    big = [r.timing for r, x in zip(results, events * 2, strict=True) if len(x) >= 2]
    assert all([r.model for r in t.requests] == ["embed", "build", "filter", "gnn", "label"]
               for t in big)
    stats = stats_delta(before, after)
    for model in ("embed", "build", "filter", "gnn", "label"):
        assert stats[model].requests == len(big)
        assert stats[model].compute_infer_ms > 0
        assert stats[model].queue_ms >= 0
    assert "exatrkx" not in stats


def test_shared_memory_falls_back_inline_for_big_events(
        server: TritonServer, weights_dir: Path, events: list[np.ndarray],
        reference: list[np.ndarray]) -> None:
    with make_runner(5, server.grpc_url, shm=True, shm_max_hits=100,
                     weights_dir=weights_dir) as runner:
        for features, want in zip(events, reference, strict=True):
            np.testing.assert_array_equal(runner.run(features).labels, want)


def test_shared_memory_regions_grow_with_the_events(
        server: TritonServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import exatrkx.service.transport as transport

    monkeypatch.setattr(transport, "SHM_MIN_HITS", 16)
    rng = np.random.default_rng(8)
    with transport.Transport(transport.ClientConfig(url=server.grpc_url)) as inline, \
            transport.Transport(transport.ClientConfig(url=server.grpc_url,
                                                       shared_memory=True)) as shm:
        sizes = []
        for n in (10, 16, 17, 300, 40):
            x = rng.random((n, 3), dtype=np.float32)
            got = shm.infer("embed", {"FEATURES": x}, ["EMBEDDING"])["EMBEDDING"]
            want = inline.infer("embed", {"FEATURES": x}, ["EMBEDDING"])["EMBEDDING"]
            np.testing.assert_array_equal(got, want)
            sizes.append(shm._regions["FEATURES-in"].size)
        # 16 hits (12 B each), then the next power of two: 32, then 512, kept for 40
        assert sizes == [16 * 12, 16 * 12, 32 * 12, 512 * 12, 512 * 12]
        status = shm.client.get_system_shared_memory_status(headers=shm.headers, as_json=True)
        names = {r["name"] for r in status["regions"].values()}  # gRPC: a map by name
        assert names == {r.name for r in shm._regions.values()}  # replaced ones unregistered


def raw_infer(server: TritonServer, model: str, array: np.ndarray, dtype: str) -> None:
    """A plain tritonclient request of FEATURES ``array`` as given (add the event dimension
    for a well-formed request)."""
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        inp = grpcclient.InferInput("FEATURES", list(array.shape), dtype)
        inp.set_data_from_numpy(array)
        client.infer(model, [inp])
    finally:
        client.close()


GOOD = np.random.default_rng(5).random((60, 3), dtype=np.float32)


@pytest.mark.parametrize("model", ["embed", "exatrkx", "exatrkx_pipeline"])
@pytest.mark.parametrize(("case", "array", "dtype", "message"), [
    ("empty", np.zeros((1, 0, 3), np.float32), "FP32", "empty"),
    ("nan", np.where(np.arange(180).reshape(60, 3) == 100, np.nan, GOOD).astype(np.float32)[None],
     "FP32", "non-finite"),
    ("inf", np.full((1, 4, 3), np.inf, np.float32), "FP32", "non-finite"),
    ("too many hits", np.zeros((1, 4001, 3), np.float32), "FP32", "limit of 4000"),
    ("wrong shape", np.zeros((1, 10, 4), np.float32), "FP32", "shape"),
    ("wrong rank", np.zeros((1, 30), np.float32), "FP32", "shape"),
    ("wrong dtype", GOOD.astype(np.float64)[None], "FP64", "FP32"),
    ("two events in one request", np.stack([GOOD, GOOD]), "FP32", "one event per request"),
    ("no event dimension", GOOD, "FP32", "shape|batch-size"),
])
def test_bad_tensors_get_clear_errors_and_the_server_stays_up(
        server: TritonServer, weights_dir: Path, model: str, case: str, array: np.ndarray,
        dtype: str, message: str) -> None:
    with pytest.raises(InferenceServerException, match=message):
        raw_infer(server, model, array, dtype)
    assert server.is_ready()
    with Transport(ClientConfig(url=server.grpc_url)) as transport:
        if model == "embed":
            out = transport.infer(model, {"FEATURES": GOOD}, ["EMBEDDING"])["EMBEDDING"]
            assert out.shape == (60, 8) and np.isfinite(out).all()
        else:
            with make_runner(0, weights_dir=weights_dir) as local:
                want = local.run(GOOD).labels
            got = transport.infer(model, {"FEATURES": GOOD}, ["LABELS"])["LABELS"]
            np.testing.assert_array_equal(got, want)


def test_bad_intermediate_tensors(server: TritonServer) -> None:
    with Transport(ClientConfig(url=server.grpc_url)) as transport:
        # a refused tensor is bad input (exit code 2), not a server problem
        with pytest.raises(RejectedInput, match="outside"):
            transport.infer("filter", {"FEATURES": GOOD, "EDGES": np.array([[70], [1]])},
                            ["EDGES_KEPT"])
        with pytest.raises(RejectedInput, match="SCORES has 2 values for 1 edges"):
            transport.infer("label", {"FEATURES": GOOD, "EDGES_KEPT": np.array([[3], [1]]),
                                      "SCORES": np.array([0.9, 0.9], np.float32)}, ["LABELS"])
        labels = transport.infer("label", {"FEATURES": GOOD,
                                           "EDGES_KEPT": np.array([[3, 5], [1, 3]]),
                                           "SCORES": np.array([0.9, 0.9], np.float32)},
                                 ["LABELS"])["LABELS"]
    want = np.full(60, -1)
    want[[1, 3, 5]] = 0
    np.testing.assert_array_equal(labels, want)


def test_client_errors_are_one_line_remote_errors(server: TritonServer) -> None:
    from exatrkx.serve import free_port

    with pytest.raises(ServerUnavailable, match="no ready Triton server"):
        make_runner(5, f"127.0.0.1:{free_port()}")
    with Transport(ClientConfig(url=server.grpc_url)) as transport:
        with pytest.raises(RemoteError, match="nosuchmodel"):
            transport.infer("nosuchmodel", {"FEATURES": GOOD}, ["LABELS"])


@pytest.fixture(scope="module")
def batching_server(tmp_path_factory: pytest.TempPathFactory, weights_dir: Path,
                    server_config: Callable[..., ServerConfig]) -> Iterator[TritonServer]:
    """A server whose batcher waits 300 ms for more requests (so concurrent requests share
    executions) and joins at most 700 hits per forward pass (so groups form too)."""
    from exatrkx.serve import RepositoryConfig, write_repository

    repo = write_repository(tmp_path_factory.mktemp("batching") / "models", weights_dir,
                            RepositoryConfig(dynamic_batching=True, max_queue_delay_us=300_000,
                                             max_batch_events=8, batch_max_hits=700,
                                             max_hits=4000, libtorch_variant=False,
                                             floors=False))
    with TritonServer(repo, server_config()) as srv:
        yield srv


def _settled_delta(read: Callable[[], dict], before: dict, model: str,
                   requests: int, timeout_s: float = 10.0) -> dict:
    """The statistics delta once ``model`` has counted ``requests`` successes.

    Triton records a Python model's statistics when its execute returns, which can be after
    the client holds the answers; read again (bounded) until the count has arrived."""
    deadline = time.monotonic() + timeout_s
    while True:
        delta = stats_delta(before, read())
        if (model in delta and delta[model].requests >= requests) \
                or time.monotonic() > deadline:
            return delta
        time.sleep(0.05)


def test_batched_executions_give_every_option_the_in_process_labels(
        batching_server: TritonServer, weights_dir: Path, events: list[np.ndarray],
        reference: list[np.ndarray]) -> None:
    results, stats = [], {}
    for option in REMOTE_OPTIONS:
        with make_runner(option, batching_server.grpc_url, weights_dir=weights_dir,
                         concurrency=4) as runner:
            before = runner.server_statistics()
            results += runner.run_many(events * 2)
            if option == Option.PIPELINE_MODEL:
                stats = _settled_delta(runner.server_statistics, before, PIPELINE_MODEL,
                                       2 * len(events))
    for result, want in zip(results, reference * 2 * len(REMOTE_OPTIONS), strict=True):
        np.testing.assert_array_equal(result.labels, want)
    assert stats["exatrkx_pipeline"].executions < stats["exatrkx_pipeline"].requests, \
        "requests were batched"


def _concurrently(server: TritonServer, model: str, requests: list[dict[str, np.ndarray]],
                  output: str) -> list[np.ndarray | Exception]:
    """Send every request at once, one connection each; the answer or the error of each."""
    def send(inputs: dict[str, np.ndarray]) -> np.ndarray | Exception:
        with Transport(ClientConfig(url=server.grpc_url, retries=0)) as transport:
            try:
                return transport.infer(model, inputs, [output])[output]
            except Exception as exc:
                return exc

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


@pytest.mark.parametrize("model", ["exatrkx_pipeline", "exatrkx", "filter"])
def test_a_bad_event_in_a_batch_gets_its_own_error_and_the_others_their_answers(
        batching_server: TritonServer, weights_dir: Path, events: list[np.ndarray],
        model: str) -> None:
    good = [x for x in events if len(x) >= 30][:5]
    bad_features = good[1].copy()
    bad_features[7, 2] = np.nan
    with make_runner(0, weights_dir=weights_dir) as local:
        want = [local.run(x, keep_graph=True) for x in good]
    if model == "filter":
        output = "EDGES_KEPT"
        requests = [{"FEATURES": x, "EDGES": r.graph["build_edges"]}
                    for x, r in zip(good, want, strict=True)]
        expected = [r.graph["filter_edges"] for r in want]
        bad = {"FEATURES": good[0], "EDGES": np.array([[len(good[0]) + 5], [0]])}
        message = "outside"
    else:
        output = "LABELS"
        requests = [{"FEATURES": x} for x in good]
        expected = [r.labels for r in want]
        bad, message = {"FEATURES": bad_features}, "non-finite"
    with Transport(ClientConfig(url=batching_server.grpc_url)) as transport:
        before = transport.statistics()
        answers = _concurrently(batching_server, model, [*requests[:2], bad, *requests[2:]],
                                output)
        inner = "filter" if model == "filter" else "embed" if model == "exatrkx" else model
        stats = _settled_delta(transport.statistics, before, inner, len(requests))
    assert stats[inner].executions < stats[inner].requests, "the requests shared executions"
    refused = answers.pop(2)
    assert isinstance(refused, RejectedInput) and message in str(refused), refused
    for got, exp in zip(answers, expected, strict=True):
        assert not isinstance(got, Exception), got
        np.testing.assert_array_equal(got, exp)
    assert batching_server.is_ready()
