"""Client pieces that need no server: settings, statistics arithmetic, option 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exatrkx.config import PipelineConfig
from exatrkx.contract import MODELS, OPTIONS, STAGE_MODELS, STAGES, Option
from exatrkx.core.models import build_models, save_models
from exatrkx.core.pipeline import pipeline_from_nets
from exatrkx.errors import InputError
from exatrkx.service.runner import make_runner
from exatrkx.service.stats import ModelStats, parse_statistics, stats_delta
from exatrkx.service.transport import ClientConfig


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = PipelineConfig(max_neighbours=16)
    return save_models(build_models(cfg, seed=7), cfg, tmp_path_factory.mktemp("w"))


def test_addresses_and_region_sizes() -> None:
    assert ClientConfig().address == "127.0.0.1:8001"
    assert ClientConfig(protocol="http").address == "127.0.0.1:8000"
    assert ClientConfig(url="grpc://host:9").address == "host:9"
    assert ClientConfig(url="http://host/", protocol="http").address == "host:8000"
    cfg = ClientConfig(max_neighbours=10, embed_dim=12)
    assert cfg.bytes_per_hit("EDGES") == 160
    assert cfg.bytes_per_hit("EMBEDDING") == 48
    with pytest.raises(InputError, match="protocol"):
        ClientConfig(protocol="udp")


def test_options_cover_the_stages() -> None:
    assert OPTIONS[Option.EVERY_STAGE_REMOTE].remote_stages == STAGES
    assert (set(OPTIONS[Option.NETS_REMOTE].remote_stages)
            | set(OPTIONS[Option.PYTHON_REMOTE].remote_stages)) == set(STAGES)
    for stage in STAGES:
        assert STAGE_MODELS[stage].name in MODELS
    assert OPTIONS[Option.IN_PROCESS].local_stages == STAGES
    assert [OPTIONS[o].requests_per_event for o in OPTIONS] == [0, 3, 2, 5, 1, 1]


def _raw(count: int, ns: int) -> dict:
    stats = {key: {"count": str(count), "ns": str(ns * (i + 1))}
             for i, key in enumerate(("success", "queue", "compute_input", "compute_infer",
                                      "compute_output"))}
    return {"model_stats": [{"name": "gnn", "version": "1", "execution_count": str(count),
                             "inference_stats": stats}]}


def test_statistics_deltas_are_per_request_averages() -> None:
    before = parse_statistics(_raw(10, 1_000_000))
    after = parse_statistics(_raw(14, 3_000_000))
    delta = stats_delta(before, after)
    assert delta == {"gnn": ModelStats(requests=4, executions=4, request_ms=0.5, queue_ms=1.0,
                                       compute_input_ms=1.5, compute_infer_ms=2.0,
                                       compute_output_ms=2.5)}
    assert stats_delta(after, after) == {}


def test_option_0_is_the_in_process_pipeline(weights: Path) -> None:
    from exatrkx.core.models import load_models

    nets, cfg = load_models(weights)
    pipe = pipeline_from_nets(nets, cfg, num_threads=None)
    rng = np.random.default_rng(1)
    events = [rng.random((n, 3), dtype=np.float32) * 2 - 1 for n in (0, 1, 50, 300)]
    with make_runner(0, weights_dir=weights, concurrency=2) as runner:
        results = runner.run_many(events)
    for x, result in zip(events, results, strict=True):
        np.testing.assert_array_equal(result.labels, pipe.run(x).labels)
        assert set(result.timing.stages_ms) == set(STAGES)
        assert result.timing.requests == []
    assert runner.server_statistics() == {}


def test_bad_arguments(weights: Path) -> None:
    with pytest.raises(InputError, match="0-5"):
        make_runner(6)
    with pytest.raises(InputError, match="concurrency"):
        make_runner(0, concurrency=0, weights_dir=weights)
    with make_runner(0, weights_dir=weights) as runner, pytest.raises(InputError, match="3"):
        runner.run(np.zeros((4, 2), np.float32))
