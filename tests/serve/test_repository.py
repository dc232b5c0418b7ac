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
from exatrkx.contract import CONFIG_PARAMETER, DEFAULT_MAX_HITS, NET_STAGES
from exatrkx.core.models import load_models, load_torchscript
from exatrkx.errors import InputError
from exatrkx.serve import RepositoryConfig, is_repository, parse_config, write_repository
from exatrkx.serve.repository import repository_models

ALL_MODELS = ["build", "embed", "exatrkx", "exatrkx_pipeline", "filter", "gnn", "identity",
              "identity_ensemble5", "label"]


def configs(repo: Path) -> dict[str, mc.ModelConfig]:
    return {p.parent.name: parse_config(p) for p in sorted(repo.glob("*/config.pbtxt"))}


def test_every_config_parses_as_model_config(repository: Path) -> None:
    cfgs = configs(repository)
    assert sorted(cfgs) == ALL_MODELS
    assert is_repository(repository)
    for name, cfg in cfgs.items():
        assert cfg.name == name
        assert cfg.max_batch_size == 0
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


def test_adapters_are_thin_and_settings_come_from_the_weights(
        repository: Path, weights_dir: Path) -> None:
    _, stored = load_models(weights_dir)
    for name, cfg in configs(repository).items():
        if cfg.platform == "ensemble":
            continue
        assert cfg.backend == "python"
        source = (repository / name / "1" / "model.py").read_text()
        code = [line for line in source.splitlines() if line and not line.startswith(('"', "_"))]
        assert code == [f"from exatrkx.serve.adapters import {code[0].split()[3]} "
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
                            libtorch_variant=False)
    cfgs = configs(repo)
    assert cfgs["gnn"].instance_group[0].count == 2
    assert cfgs["gnn"].instance_group[0].kind == mc.ModelInstanceGroup.Kind.KIND_CPU
    assert cfgs["exatrkx_pipeline"].instance_group[0].count == 3
    batched = {n for n, c in cfgs.items() if c.HasField("dynamic_batching")}
    assert batched == {"embed"}
    assert cfgs["embed"].max_batch_size == DEFAULT_MAX_HITS
    assert list(cfgs["embed"].input[0].dims) == [3]
    assert list(cfgs["embed"].output[0].dims) == [8]
    assert cfgs["filter"].max_batch_size == 0
    assert not (tmp_path / "r-libtorch").exists()
    with pytest.raises(TypeError, match="unknown repository setting"):
        write_repository(tmp_path / "x", weights_dir, instance=2)
    with pytest.raises(InputError):
        RepositoryConfig(instances=0)
    with pytest.raises(InputError):
        RepositoryConfig(device="tpu")


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
