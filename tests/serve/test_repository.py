"""The model repository writer: configs parse as Triton ModelConfig, adapters are thin,
settings land where they should, the libtorch variant computes what the package does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tritonclient.grpc import model_config_pb2 as mc

from exatrkx.config import PipelineConfig
from exatrkx.contract import CONFIG_PARAMETER, DEFAULT_MAX_HITS, MODELS, NET_STAGES
from exatrkx.core.models import load_models, load_torchscript
from exatrkx.errors import InputError
from exatrkx.serve import RepositoryConfig, is_repository, parse_config, write_repository
from exatrkx.serve.repository import repository_models

ALL_MODELS = sorted(MODELS)
SERVED = ["build", "embed", "exatrkx", "exatrkx_pipeline", "filter", "gnn", "label"]


def configs(repo: Path) -> dict[str, mc.ModelConfig]:
    return {p.parent.name: parse_config(p) for p in sorted(repo.glob("*/config.pbtxt"))}


def test_every_config_parses_as_model_config(repository: Path) -> None:
    cfgs = configs(repository)
    assert sorted(cfgs) == ALL_MODELS
    assert {"touch", "touch_ensemble5", "touch_gnn"} <= set(cfgs)
    assert is_repository(repository)
    for name, cfg in cfgs.items():
        assert cfg.name == name
        # one event per request, the event dimension being Triton's batch dimension
        assert cfg.max_batch_size == RepositoryConfig().max_batch_events
        assert (repository / name / "1").is_dir()


def test_tensor_names_types_and_shapes(repository: Path, serve_config: PipelineConfig) -> None:
    cfgs = configs(repository)
    d = serve_config.embed.out_dim
    fp32, i64 = mc.DataType.TYPE_FP32, mc.DataType.TYPE_INT64

    def io(name: str) -> tuple[list, list]:
        cfg = cfgs[name]
        return ([(t.name, t.data_type, list(t.dims)) for t in cfg.input],
                [(t.name, t.data_type, list(t.dims)) for t in cfg.output])

    feat = ("FEATURES", fp32, [-1, 3])
    kept = ("EDGES_KEPT", i64, [2, -1])
    assert io("embed") == ([feat], [("EMBEDDING", fp32, [-1, d])])
    assert io("build") == ([("EMBEDDING", fp32, [-1, d])], [("EDGES", i64, [2, -1])])
    assert io("filter") == ([feat, ("EDGES", i64, [2, -1])], [kept])
    assert io("gnn") == ([feat, kept], [("SCORES", fp32, [-1])])
    assert io("label") == ([feat, kept, ("SCORES", fp32, [-1])], [("LABELS", i64, [-1])])
    for name in ("exatrkx", "exatrkx_pipeline"):
        assert io(name) == ([feat], [("LABELS", i64, [-1])])
    assert io("identity") == ([feat], [("OUTPUT", fp32, [-1, 3])])
    sizes = ("SIZES", i64, [3])
    assert io("touch") == ([feat], [("LABELS", i64, [-1])])
    assert io("touch_embed") == ([feat, sizes], [("EMBEDDING", fp32, [-1, d])])
    assert io("touch_filter") == ([feat, ("EDGES", i64, [2, -1]), sizes], [kept])
    assert io("touch_label") == io("label")
    assert io("touch_ensemble5") == ([feat, sizes], [("LABELS", i64, [-1])])
    for name, cfg in cfgs.items():  # ragged batches: every input of variable size
        if cfg.platform != "ensemble":
            assert all(t.allow_ragged_batch == (-1 in t.dims) for t in cfg.input), name


def test_ensembles_chain_existing_models(repository: Path) -> None:
    cfgs = configs(repository)
    ens = cfgs["exatrkx"]
    assert ens.platform == "ensemble"
    steps = ens.ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["embed", "build", "filter", "gnn", "label"]
    produced = {"FEATURES"}
    for step in steps:  # every step's inputs exist before it runs, outputs match the model
        assert set(step.input_map.values()) <= produced
        model = cfgs[step.model_name]
        assert set(step.input_map) == {t.name for t in model.input}
        assert set(step.output_map) == {t.name for t in model.output}
        produced |= set(step.output_map.values())
    assert "LABELS" in produced
    floor = cfgs["identity_ensemble5"].ensemble_scheduling.step
    assert [s.model_name for s in floor] == ["identity"] * 5
    touch = cfgs["touch_ensemble5"].ensemble_scheduling.step
    assert [s.model_name for s in touch] == [f"touch_{s}" for s in
                                              ("embed", "build", "filter", "gnn", "label")]
    for ours, theirs in zip(steps, touch, strict=True):  # the same wiring, plus SIZES
        assert {k: v for k, v in theirs.input_map.items() if k != "SIZES"} == \
            dict(ours.input_map)
        assert dict(theirs.output_map) == dict(ours.output_map)


def test_adapters_are_thin_and_settings_come_from_the_weights(
        repository: Path, weights_dir: Path) -> None:
    _, stored = load_models(weights_dir)
    for name, cfg in configs(repository).items():
        if cfg.platform == "ensemble":
            continue
        assert cfg.backend == "python"
        source = (repository / name / "1" / "model.py").read_text()
        code = [line for line in source.splitlines() if line and not line.startswith(('"', "_"))]
        module = "floors" if MODELS[name].kind.startswith("floor") else "adapters"
        assert code == [f"from exatrkx.serve.{module} import {code[0].split()[3]} "
                        "as TritonPythonModel"], source
        settings = json.loads(cfg.parameters[CONFIG_PARAMETER].string_value)
        assert PipelineConfig.from_dict(settings["pipeline"]) == stored
        assert settings["max_hits"] == 4000
    for net in NET_STAGES:
        assert (repository / net / "1" / f"{net}.ts").is_file()
        assert (repository / "exatrkx_pipeline" / "1" / f"{net}.ts").is_file()


def test_settings_instances_batching_and_validation(tmp_path: Path, weights_dir: Path) -> None:
    repo = write_repository(tmp_path / "r", weights_dir, instances=2,
                            instances_per_model={"exatrkx_pipeline": 3}, dynamic_batching=True,
                            max_queue_delay_us=250, preferred_batch_sizes=(4, 8),
                            max_batch_events=8, batch_max_hits=3000, libtorch_variant=False,
                            floors=False)
    cfgs = configs(repo)
    assert sorted(cfgs) == SERVED and is_repository(repo)
    assert cfgs["gnn"].instance_group[0].count == 2
    assert cfgs["gnn"].instance_group[0].kind == mc.ModelInstanceGroup.Kind.KIND_CPU
    assert cfgs["exatrkx_pipeline"].instance_group[0].count == 3
    batched = {n for n, c in cfgs.items() if c.HasField("dynamic_batching")}
    assert batched == set(SERVED) - {"exatrkx"}  # the ensemble batches in its steps
    for name in batched:
        assert cfgs[name].dynamic_batching.max_queue_delay_microseconds == 250
        assert list(cfgs[name].dynamic_batching.preferred_batch_size) == [4, 8]
        settings = json.loads(cfgs[name].parameters[CONFIG_PARAMETER].string_value)
        assert settings["batch_max_hits"] == 3000
        assert settings["max_hits"] == DEFAULT_MAX_HITS >= 500_000  # events of 200 pileup
    assert {c.max_batch_size for c in cfgs.values()} == {8}
    assert list(cfgs["embed"].input[0].dims) == [-1, 3]
    assert list(cfgs["embed"].output[0].dims) == [-1, 8]
    assert not (tmp_path / "r-libtorch").exists()
    unbatched = configs(write_repository(tmp_path / "u", weights_dir, dynamic_batching=False,
                                         libtorch_variant=False, floors=False))
    assert not any(c.HasField("dynamic_batching") for c in unbatched.values())
    assert cfgs["filter"].input[1].allow_ragged_batch
    with pytest.raises(TypeError, match="unknown repository setting"):
        write_repository(tmp_path / "x", weights_dir, instance=2)
    for bad in ({"instances": 0}, {"device": "tpu"}, {"max_batch_events": 0},
                {"preferred_batch_sizes": (32,)}, {"max_queue_delay_us": -1},
                {"batch_max_hits": 0}):
        with pytest.raises(InputError):
            RepositoryConfig(**bad)  # type: ignore[arg-type]
    assert RepositoryConfig(device="cuda").forward_hits > RepositoryConfig().forward_hits


def test_a_gpu_repository_puts_the_models_on_the_gpu_and_the_floors_on_the_cpu(
        tmp_path: Path, weights_dir: Path) -> None:
    """The design holds for KIND_GPU instances: the same batching, inputs left on the GPU
    (the adapters join events there); the numpy-only floors stay on the CPU."""
    cfgs = configs(write_repository(tmp_path / "g", weights_dir, device="cuda",
                                    libtorch_variant=False))
    gpu, cpu = mc.ModelInstanceGroup.Kind.KIND_GPU, mc.ModelInstanceGroup.Kind.KIND_CPU
    for name, cfg in cfgs.items():
        if cfg.platform == "ensemble":
            continue
        floor = MODELS[name].kind.startswith("floor")
        assert cfg.instance_group[0].kind == (cpu if floor else gpu), name
        forced = cfg.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value \
            if "FORCE_CPU_ONLY_INPUT_TENSORS" in cfg.parameters else "yes"
        assert forced == ("yes" if floor else "no"), name
        assert cfg.HasField("dynamic_batching")
        settings = json.loads(cfg.parameters[CONFIG_PARAMETER].string_value)
        assert settings["device"] == "cuda"
        assert settings["batch_max_hits"] == RepositoryConfig(device="cuda").forward_hits


def test_a_limit_beyond_grpc_messages_is_refused(tmp_path: Path, weights_dir: Path) -> None:
    with pytest.raises(InputError, match="above gRPC's limit"):
        write_repository(tmp_path / "r", weights_dir, max_hits=50_000_000,
                         libtorch_variant=False)
    assert not (tmp_path / "r" / ".torchscript").exists()


def test_repository_models_lists_folders(repository: Path) -> None:
    assert repository_models(repository) == ALL_MODELS


def test_libtorch_variant_configs_and_outputs(repository: Path, weights_dir: Path,
                                              serve_config: PipelineConfig) -> None:
    variant = repository.with_name(repository.name + "-libtorch")
    cfgs = configs(variant)
    assert sorted(cfgs) == ["embed", "filter", "gnn"]
    for name, cfg in cfgs.items():
        assert cfg.platform == "pytorch_libtorch"
        assert cfg.input[0].name == "INPUT__0"
        assert [t.name for t in cfg.output] == ["OUTPUT__0"]
        assert (variant / name / "1" / "model.pt").is_file()
    assert [t.name for t in cfgs["filter"].input] == ["INPUT__0", "INPUT__1"]
    assert list(cfgs["embed"].output[0].dims) == [-1, serve_config.embed.out_dim]

    nets, _ = load_models(weights_dir)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(300, 3, generator=gen) * 2 - 1
    edges = torch.randint(0, 300, (2, 1000), generator=gen)
    edges = torch.stack([edges.max(0).values, edges.min(0).values])
    loaded = {n: load_torchscript(variant / n / "1" / "model.pt") for n in cfgs}
    with torch.inference_mode():
        np.testing.assert_allclose(loaded["embed"](x), nets.embed(x), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(loaded["filter"](x, edges), nets.filter(x, edges),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(loaded["gnn"](x, edges), nets.gnn(x, edges),
                                   rtol=1e-5, atol=1e-5)


def test_rewrite_replaces_models(tmp_path: Path, weights_dir: Path) -> None:
    repo = write_repository(tmp_path / "r", weights_dir, libtorch_variant=False)
    (repo / "embed" / "1" / "stale.txt").write_text("x")
    write_repository(repo, weights_dir, libtorch_variant=False)
    assert not (repo / "embed" / "1" / "stale.txt").exists()
    assert not (repo / ".torchscript").exists()
