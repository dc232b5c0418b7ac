"""perf_analyzer: the JSON input data we write, and real runs against a real Triton server in
which perf_analyzer itself checks the answers (``validation_data``) against the in-process
pipeline's labels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.config import PipelineConfig
from exatrkx.contract import API_KEY_HEADER
from exatrkx.core.models import build_models, save_models
from exatrkx.core.pipeline import load_pipeline
from exatrkx.errors import InputError
from exatrkx.io import Event, read_event
from exatrkx.serve import RepositoryConfig, ServerConfig, TritonServer, write_repository
from exatrkx.study import perf
from exatrkx.study.perf import (
    PerfAnalyzer,
    PerfAnalyzerError,
    concurrency_ranges,
    export_perf_data,
    find_perf_analyzer,
    load_perf_data,
    parse_csv,
    parse_stdout,
    run_perf_analyzer,
    write_pinned_model,
)

#: Short, loose measurements: these tests check function, not figures.
QUICK = {"measurement_interval_ms": 300, "stability_percentage": 1000.0, "max_trials": 4,
         "timeout": 240.0}


def helix_event(n: int, seed: int, name: str = "evt") -> Event:
    """An event of ``n`` hits on a few helix-like tracks (features only)."""
    rng = np.random.default_rng(seed)
    radii = np.array([0.032, 0.072, 0.116, 0.172, 0.26, 0.36, 0.5, 0.66, 0.82, 1.02])
    tracks = -(-n // radii.size)
    track = np.repeat(np.arange(tracks), radii.size)[:n]
    r = np.tile(radii, tracks)[:n]
    phi = rng.uniform(-1, 1, tracks)[track] + rng.normal(0, 0.04, tracks)[track] * r
    z = r * np.sinh(rng.uniform(-0.8, 0.8, tracks))[track]
    features = np.stack([r, (phi + 1) % 2 - 1, z], axis=1).astype(np.float32)
    return Event(name=name, features=features, hit_id=np.arange(n, dtype=np.int64))


# ---------------------------------------------------------------------------- no server

def test_export_round_trip(tmp_path: Path) -> None:
    events = [helix_event(n, seed) for seed, n in enumerate((37, 120, 5))]
    labels = [np.arange(e.num_hits, dtype=np.int64) % 4 - 1 for e in events]
    path = export_perf_data(events, tmp_path / "data.json", expected={"LABELS": labels})
    doc = json.loads(path.read_text())
    assert sorted(doc) == ["data", "validation_data"]
    for entry, event in zip(doc["data"], events, strict=True):
        assert list(entry) == ["FEATURES"]
        assert entry["FEATURES"]["shape"] == [event.num_hits, 3]
        assert len(entry["FEATURES"]["content"]) == event.num_hits * 3
        # perf_analyzer wants JSON floats for FP32 tensors, never bare integers
        assert all(isinstance(v, float) for v in entry["FEATURES"]["content"])
    for entry, want in zip(doc["validation_data"], labels, strict=True):
        assert entry["LABELS"] == {"content": want.tolist(), "shape": [want.size]}
    back = load_perf_data(path)
    for got, event in zip(back, events, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, event.features)  # bit-exact through JSON


def test_export_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no events"):
        export_perf_data([], tmp_path / "x.json")
    with pytest.raises(InputError, match="expected"):
        export_perf_data([helix_event(10, 0)], tmp_path / "x.json",
                         expected={"LABELS": [np.zeros(10), np.zeros(3)]})


def test_export_command(tmp_path: Path) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    for i, n in enumerate((20, 30, 40)):
        np.savetxt(folder / f"evt_{i}.csv", helix_event(n, i).features, delimiter=",")
    out = tmp_path / "perf.json"
    result = CliRunner().invoke(app, ["export-perf-data", "--events", str(folder),
                                      "--out", str(out), "--max-events", "2"])
    assert result.exit_code == 0, result.output
    back = load_perf_data(out)
    assert [a.shape for a in back] == [(20, 3), (30, 3)]
    np.testing.assert_array_equal(back[1], read_event(folder / "evt_1.csv").features)
    bad = CliRunner().invoke(app, ["export-perf-data", "--events", str(tmp_path / "none"),
                                   "--out", str(out)])
    assert bad.exit_code == 2


def test_concurrency_ranges() -> None:
    assert concurrency_ranges([1, 2, 3]) == [(1, 3, 1)]
    assert concurrency_ranges([4]) == [(4, 4, 1)]
    assert concurrency_ranges([4, 1, 2]) == [(1, 1, 1), (2, 2, 1), (4, 4, 1)]
    with pytest.raises(InputError):
        concurrency_ranges([0, 1])


def test_parse_report(tmp_path: Path) -> None:
    report = tmp_path / "r.csv"
    report.write_text(
        "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
        "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,"
        "p50 latency,p90 latency,p95 latency,p99 latency,Avg latency,request/response,"
        "response wait\n1,2367.3,2,197,45,12,85,75,0,356,419,452,3515,420,2,410\n")
    (row,) = parse_csv(report)
    assert row["concurrency"] == 1
    assert row["throughput_infer_per_s"] == pytest.approx(2367.3)
    assert row["latency_p99_ms"] == pytest.approx(3.515)
    assert row["server_queue_ms"] == pytest.approx(0.045)
    text = ("Request concurrency: 2\n  Client: \n    Request count: 70\n  Server: \n"
            "    Inference count: 71\n    Successful request count: 71\n")
    assert parse_stdout(text) == {2: {"requests": 70, "server_inferences": 71,
                                      "server_successes": 71}}


def test_unavailable_has_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(perf, "install_dir", lambda: tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(perf.PERF_ANALYZER_ENV, raising=False)
    tool, reason = find_perf_analyzer()
    assert tool is None
    assert "not installed" in reason
    (tmp_path / "UNAVAILABLE").write_text("libb64.so.0d: cannot open shared object file\n")
    assert "libb64" in find_perf_analyzer()[1]
    with pytest.raises(PerfAnalyzerError, match="unavailable"):
        run_perf_analyzer("identity", "127.0.0.1:1", tmp_path / "x.json")


# ---------------------------------------------------------------------------- real server

#: Validated events: (hits, seed); each gets models pinned to its shapes.
VALIDATED = ((150, 11), (230, 12))


@pytest.fixture(scope="module")
def tool() -> PerfAnalyzer:
    """The installed perf_analyzer (skips with the install script's reason when absent)."""
    found, reason = find_perf_analyzer()
    if found is None:
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def perf_setup(tmp_path_factory: pytest.TempPathFactory, tool: PerfAnalyzer
               ) -> Iterator[tuple[TritonServer, dict[str, Path]]]:
    """A real server on random-init weights, with models pinned to the validated events,
    and the data files: ``plain`` (3 events), ``val<i>`` (event i with its LABELS),
    ``identity`` (event 0 with itself as OUTPUT), ``wrong`` (event 0, labels off by one)."""
    base = tmp_path_factory.mktemp("perf")
    config = PipelineConfig(radius=0.08, max_neighbours=16)
    weights = save_models(build_models(config, seed=3), config, base / "weights")
    repo = write_repository(base / "models", weights,
                            RepositoryConfig(max_hits=4000, libtorch_variant=False))
    pipeline = load_pipeline(weights)
    events = [helix_event(n, seed, f"v{i}") for i, (n, seed) in enumerate(VALIDATED)]
    files = {"plain": export_perf_data([*events, helix_event(90, 13)], base / "plain.json")}
    for i, event in enumerate(events):
        n = event.num_hits
        labels = pipeline(event.features).astype(np.int64)
        assert labels.shape == (n,)
        files[f"val{i}"] = export_perf_data([event], base / f"val{i}.json",
                                            expected={"LABELS": [labels]})
        write_pinned_model(repo, "exatrkx", f"exatrkx_n{i}",
                           {"FEATURES": [n, 3], "LABELS": [n]})
        if i == 0:
            files["wrong"] = export_perf_data([event], base / "wrong.json",
                                              expected={"LABELS": [labels + 1]})
            files["identity"] = export_perf_data([event], base / "identity.json",
                                                 expected={"OUTPUT": [event.features]})
            write_pinned_model(repo, "exatrkx_pipeline", "exatrkx_pipeline_n0",
                               {"FEATURES": [n, 3], "LABELS": [n]})
            write_pinned_model(repo, "identity", "identity_n0",
                               {"FEATURES": [n, 3], "OUTPUT": [n, 3]})
    # control APIs open: perf_analyzer cannot send the key over gRPC
    cfg = ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=240,
                       restricted=())
    with TritonServer(repo, cfg) as server:
        yield server, files


def check_rows(rows: list[dict[str, object]], levels: list[int]) -> None:
    assert [r["concurrency"] for r in rows] == levels
    for row in rows:
        assert row["throughput_infer_per_s"] > 0  # type: ignore[operator]
        assert row["requests"] > 0  # type: ignore[operator]
        # Triton counts an inference when it runs and a success when the response is sent;
        # perf_analyzer reads both while up to `concurrency` requests are in flight
        gap = row["server_inferences"] - row["server_successes"]  # type: ignore[operator]
        assert abs(gap) <= row["concurrency"], row  # type: ignore[operator]
        assert row["server_successes"] > 0  # type: ignore[operator]
        assert 0 < row["latency_p50_ms"] <= row["latency_p99_ms"]  # type: ignore[operator]
        assert row["server_compute_infer_ms"] is not None


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize(("model", "data"), [
    ("identity_n0", "identity"),
    ("exatrkx_n0", "val0"),
    ("exatrkx_n1", "val1"),
    ("exatrkx_pipeline_n0", "val0"),
])
def test_perf_analyzer_validates_answers(perf_setup: tuple[TritonServer, dict[str, Path]],
                                         tool: PerfAnalyzer, model: str, data: str) -> None:
    server, files = perf_setup
    rows = run_perf_analyzer(model, server.grpc_url, files[data], concurrency=[1, 2],
                             tool=tool, **QUICK)  # type: ignore[arg-type]
    check_rows(rows, [1, 2])


@pytest.mark.server
@pytest.mark.slow
def test_perf_analyzer_catches_a_wrong_answer(
        perf_setup: tuple[TritonServer, dict[str, Path]], tool: PerfAnalyzer) -> None:
    server, files = perf_setup
    with pytest.raises(PerfAnalyzerError, match="doesn't match expected output"):
        run_perf_analyzer("exatrkx_n0", server.grpc_url, files["wrong"], concurrency=[1],
                          tool=tool, **QUICK)  # type: ignore[arg-type]


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize(("model", "protocol", "shm", "levels"), [
    ("identity", "grpc", "none", [1, 2, 4]),
    ("identity", "grpc", "system", [1, 2]),
    ("identity", "http", "none", [1]),
    ("exatrkx", "grpc", "none", [1, 2]),
    ("exatrkx_pipeline", "grpc", "system", [1, 2]),
])
def test_perf_analyzer_measures(perf_setup: tuple[TritonServer, dict[str, Path]],
                                tool: PerfAnalyzer, model: str, protocol: str, shm: str,
                                levels: list[int]) -> None:
    server, files = perf_setup
    url = server.grpc_url if protocol == "grpc" else server.http_url
    # HTTP inference needs the key (gRPC inference is open to standard clients)
    key = ["-H", f"{API_KEY_HEADER}:{server.api_key}"] if protocol == "http" else []
    rows = run_perf_analyzer(model, url, files["plain"], protocol=protocol, concurrency=levels,
                             shared_memory=shm, tool=tool, extra=key,
                             **QUICK)  # type: ignore[arg-type]
    check_rows(rows, levels)
    assert all(r["protocol"] == protocol and r["shared_memory"] == shm for r in rows)


def test_perf_analyzer_tls_arguments(pki: Path) -> None:
    from exatrkx.service.tls import ClientTls
    from exatrkx.study.perf import perf_tls_args

    assert perf_tls_args(None) == []
    assert perf_tls_args(ClientTls(pki / "ca.crt", pki / "client.crt", pki / "client.key")) == [
        "--ssl-grpc-use-ssl", f"--ssl-grpc-root-certifications-file={pki / 'ca.crt'}",
        f"--ssl-grpc-private-key-file={pki / 'client.key'}",
        f"--ssl-grpc-certificate-chain-file={pki / 'client.crt'}"]
