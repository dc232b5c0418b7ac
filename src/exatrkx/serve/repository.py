"""Write the Triton model repository that serves the pipeline.

Layout (``<dir>``)::

    embed/  build/  filter/  gnn/  label/    one Python-backend model per stage
    exatrkx/                                 ensemble of the five (FEATURES -> LABELS)
    exatrkx_pipeline/                        the whole pipeline in one Python-backend model
    identity/  identity_ensemble5/           Triton's floor: no work, one hop / five hops

Every ``<model>/1/model.py`` is a two-line adapter that imports its class from
:mod:`exatrkx.serve.adapters`; the nets travel as TorchScript files beside it. The pipeline
settings (radius, k, cuts) come from the weights' metadata and reach the models through the
``exatrkx_config`` parameter of each ``config.pbtxt``.

With ``libtorch_variant`` a second folder (``<dir>-libtorch`` unless told otherwise) holds the
three nets as ``platform: "pytorch_libtorch"`` models (``INPUT__0``.. / ``OUTPUT__0``) for full
Triton installs, which have the libtorch backend this wheel's server lacks.

Batching: events have different numbers of hits and edges, so by default no model has a
batch dimension (``max_batch_size: 0``; Triton's dynamic batcher never combines requests of
such a model). With ``dynamic_batching`` the embed model, whose work is per hit, takes the
hits as its batch dimension (``max_batch_size: max_hits``, FEATURES dims ``[3]``): Triton
then hands it several events at once and its adapter runs them as one concatenated tensor,
which is exact. The other stages cannot: their edge tensors are ``[2, E]`` (the batch would be
the second dimension) and the build, GNN and labelling results depend on the whole event.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from exatrkx.config import PipelineConfig
from exatrkx.contract import (
    CONFIG_PARAMETER,
    DEFAULT_MAX_HITS,
    ENSEMBLE_MODEL,
    FLOOR_ENSEMBLE_STEPS,
    IDENTITY_ENSEMBLE_MODEL,
    IDENTITY_MODEL,
    MODELS,
    NET_STAGES,
    PIPELINE_MODEL,
    STAGE_MODELS,
    STAGES,
    TENSORS,
    check_message_limits,
)
from exatrkx.core.models import export_torchscript, load_models
from exatrkx.errors import InputError

Device = Literal["cpu", "cuda"]
#: Stage models that can use Triton's dynamic batcher (per-hit work, hits as the batch
#: dimension).
BATCHED_MODELS = (STAGE_MODELS["embed"].name,)

_TRITON_TYPES = {"FP32": mc.DataType.TYPE_FP32, "INT64": mc.DataType.TYPE_INT64}

#: Model -> adapter class in :mod:`exatrkx.serve.adapters`.
ADAPTERS = {
    STAGE_MODELS["embed"].name: "EmbedModel",
    STAGE_MODELS["build"].name: "BuildModel",
    STAGE_MODELS["filter"].name: "FilterModel",
    STAGE_MODELS["gnn"].name: "GNNModel",
    STAGE_MODELS["label"].name: "LabelModel",
    PIPELINE_MODEL: "PipelineModel",
    IDENTITY_MODEL: "IdentityModel",
}


@dataclass(frozen=True)
class RepositoryConfig:
    """Serving settings of the repository.

    Attributes:
        instances: model instances (stub processes) per model.
        instances_per_model: overrides of ``instances`` by model name.
        dynamic_batching: dynamic batcher on embed (see the module docstring).
        max_queue_delay_us: the batcher's wait for more requests.
        max_hits: events with more hits are refused before any work is done; the repository
            writer refuses a limit whose largest request or response could exceed gRPC's
            message limit (:func:`exatrkx.contract.check_message_limits`).
        device: ``"cpu"`` or ``"cuda"`` (instance kind and where the adapters compute).
        torch_threads: intra-op threads of torch in each stub process (0: torch's default).
        libtorch_variant: also write the libtorch-backend variant of the nets.
    """

    instances: int = 1
    instances_per_model: Mapping[str, int] = field(default_factory=dict)
    dynamic_batching: bool = False
    max_queue_delay_us: int = 100
    max_hits: int = DEFAULT_MAX_HITS
    device: Device = "cpu"
    torch_threads: int = 1
    libtorch_variant: bool = True

    def __post_init__(self) -> None:
        if self.instances < 1 or any(v < 1 for v in self.instances_per_model.values()):
            raise InputError("model instances must be >= 1")
        if self.max_hits < 1:
            raise InputError("max_hits must be >= 1")
        if self.device not in ("cpu", "cuda"):
            raise InputError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.torch_threads < 0:
            raise InputError("torch_threads must be >= 0")

    def count(self, model: str) -> int:
        """Instances of ``model``."""
        return int(self.instances_per_model.get(model, self.instances))


# ---------------------------------------------------------------------------- configs

def _tensor(msg: Any, name: str, embed_dim: int) -> None:
    spec = TENSORS[name]
    msg.name = name
    msg.data_type = _TRITON_TYPES[spec.dtype]
    msg.dims.extend(spec.dims(embed_dim))


def _io(cfg: mc.ModelConfig, model: str, embed_dim: int) -> None:
    """The inputs and outputs of ``model`` as the contract says."""
    spec = MODELS[model]
    for name in spec.inputs:
        _tensor(cfg.input.add(), name, embed_dim)
    for name in spec.outputs:
        _tensor(cfg.output.add(), name, embed_dim)


def python_model_config(name: str, embed_dim: int, settings: RepositoryConfig,
                        adapter_config: dict[str, Any]) -> mc.ModelConfig:
    """``config.pbtxt`` of one Python-backend model."""
    cfg = mc.ModelConfig(name=name, backend="python", max_batch_size=0)
    _io(cfg, name, embed_dim)
    group = cfg.instance_group.add()
    group.count = settings.count(name)
    group.kind = (mc.ModelInstanceGroup.Kind.KIND_GPU if settings.device == "cuda"
                  else mc.ModelInstanceGroup.Kind.KIND_CPU)
    if settings.dynamic_batching and name in BATCHED_MODELS:
        # hits are the batch dimension: requests of several events are concatenated
        cfg.max_batch_size = settings.max_hits
        for tensor in [*cfg.input, *cfg.output]:
            del tensor.dims[0]
        cfg.dynamic_batching.max_queue_delay_microseconds = settings.max_queue_delay_us
    cfg.parameters[CONFIG_PARAMETER].string_value = json.dumps(adapter_config, sort_keys=True)
    if settings.device == "cuda":
        cfg.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value = "no"
    return cfg


def _ensemble(name: str, embed_dim: int,
              steps: list[tuple[str, dict[str, str], dict[str, str]]]) -> mc.ModelConfig:
    cfg = mc.ModelConfig(name=name, platform="ensemble", max_batch_size=0)
    _io(cfg, name, embed_dim)
    for model, input_map, output_map in steps:
        step = cfg.ensemble_scheduling.step.add()
        step.model_name = model
        step.model_version = -1
        step.input_map.update(input_map)
        step.output_map.update(output_map)
    return cfg


def ensemble_steps() -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """The ``exatrkx`` ensemble's wiring: each stage model in order, its inputs taken from
    the ensemble's input or an earlier stage's output (internal names in lower case), the
    last output being the ensemble's output."""
    ensemble = MODELS[ENSEMBLE_MODEL]
    def internal(tensor: str) -> str:
        return tensor if tensor in (*ensemble.inputs, *ensemble.outputs) else tensor.lower()

    steps = []
    for stage in STAGES:
        spec = STAGE_MODELS[stage]
        steps.append((spec.name, {t: internal(t) for t in spec.inputs},
                      {t: internal(t) for t in spec.outputs}))
    return steps


def ensemble_config(embed_dim: int) -> mc.ModelConfig:
    """The ``exatrkx`` ensemble: the five stage models chained, FEATURES -> LABELS."""
    return _ensemble(ENSEMBLE_MODEL, embed_dim, ensemble_steps())


def identity_ensemble_config(steps: int = FLOOR_ENSEMBLE_STEPS) -> mc.ModelConfig:
    """``identity_ensemble5``: ``steps`` identity models chained, FEATURES -> OUTPUT."""
    identity = MODELS[IDENTITY_MODEL]
    (src_name,), (dst_name,) = identity.inputs, identity.outputs
    chain = []
    for i in range(steps):
        src = src_name if i == 0 else f"hop{i}"
        dst = dst_name if i == steps - 1 else f"hop{i + 1}"
        chain.append((IDENTITY_MODEL, {src_name: src}, {dst_name: dst}))
    return _ensemble(IDENTITY_ENSEMBLE_MODEL, 0, chain)


def libtorch_config(name: str, embed_dim: int, settings: RepositoryConfig) -> mc.ModelConfig:
    """A net as a ``pytorch_libtorch`` model (``INPUT__i`` / ``OUTPUT__0``, logits for the
    filter and the GNN: the cut and the sigmoid stay with the caller)."""
    cfg = mc.ModelConfig(name=name, platform="pytorch_libtorch", max_batch_size=0)
    spec = MODELS[name]
    out_dims = TENSORS[spec.output].dims(embed_dim)
    for i, tensor in enumerate(spec.inputs):
        src = TENSORS[tensor]
        inp = cfg.input.add()
        inp.name, inp.data_type = f"INPUT__{i}", _TRITON_TYPES[src.dtype]
        inp.dims.extend(src.dims(embed_dim))
    out = cfg.output.add()
    out.name, out.data_type = "OUTPUT__0", _TRITON_TYPES["FP32"]
    out.dims.extend(out_dims if spec.stage == "embed" else [-1])
    group = cfg.instance_group.add()
    group.count = settings.count(name)
    group.kind = (mc.ModelInstanceGroup.Kind.KIND_GPU if settings.device == "cuda"
                  else mc.ModelInstanceGroup.Kind.KIND_CPU)
    if settings.torch_threads:
        for key in ("INTRA_OP_THREAD_COUNT", "INTER_OP_THREAD_COUNT"):
            cfg.parameters[key].string_value = str(settings.torch_threads)
    return cfg


def config_text(cfg: mc.ModelConfig) -> str:
    """Protobuf text of a model config (what ``config.pbtxt`` holds)."""
    return text_format.MessageToString(cfg)


def parse_config(path: str | Path) -> mc.ModelConfig:
    """Parse a ``config.pbtxt`` as Triton's ``ModelConfig`` (raises on any bad field)."""
    return text_format.Parse(Path(path).read_text(), mc.ModelConfig())


# ---------------------------------------------------------------------------- writing

def _adapter_source(model: str) -> str:
    cls = ADAPTERS[model]
    return (f'"""Triton Python-backend model ``{model}``: adapter over the exatrkx package."""\n\n'
            f"from exatrkx.serve.adapters import {cls} as TritonPythonModel\n\n"
            '__all__ = ["TritonPythonModel"]\n')


def _write_model(repo: Path, cfg: mc.ModelConfig,
                 files: Mapping[str, Path | str] | None = None) -> Path:
    """``<repo>/<name>/config.pbtxt`` and ``1/``; ``files`` maps names in ``1/`` to sources
    (a Path is copied, a str is written as text)."""
    folder = repo / cfg.name
    version = folder / "1"
    version.mkdir(parents=True, exist_ok=True)
    (folder / "config.pbtxt").write_text(config_text(cfg))
    for name, src in dict(files or {}).items():
        if isinstance(src, Path):
            shutil.copyfile(src, version / name)
        else:
            (version / name).write_text(src)
    return folder


def _settings(config: RepositoryConfig | None, overrides: dict[str, Any]) -> RepositoryConfig:
    known = {f.name for f in fields(RepositoryConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown repository setting(s): {', '.join(unknown)}")
    if config is None:
        return RepositoryConfig(**overrides)
    if overrides:
        values = {f.name: getattr(config, f.name) for f in fields(RepositoryConfig)}
        values.update(overrides)
        return RepositoryConfig(**values)
    return config


def export_nets(weights_dir: str | Path | None, out: Path) -> tuple[dict[str, Path],
                                                                     PipelineConfig]:
    """TorchScript files of the three nets (``<out>/<net>.ts``) and the pipeline settings."""
    nets, pipeline_config = load_models(weights_dir)
    paths = export_torchscript(nets, out)
    return {name: Path(paths[name]) for name in NET_STAGES}, pipeline_config


def write_repository(directory: str | Path, weights_dir: str | Path | None = None,
                     config: RepositoryConfig | None = None, *,
                     libtorch_dir: str | Path | None = None, **settings: Any) -> Path:
    """Write the model repository; returns its folder.

    Args:
        directory: where to write (created; existing model folders are replaced).
        weights_dir: trained weights (``None``: the weights shipped with the package).
        config: serving settings; keyword ``settings`` override single fields
            (``instances=2``, ``max_hits=50000``, ``dynamic_batching=True``, ...).
        libtorch_dir: folder of the libtorch variant (default ``<directory>-libtorch``).

    Returns:
        The repository folder, ready for ``tritonserver --model-repository``.
    """
    cfg = _settings(config, settings)
    repo = Path(directory).resolve()
    repo.mkdir(parents=True, exist_ok=True)
    scratch = repo / ".torchscript"
    nets, pipe = export_nets(weights_dir, scratch)
    embed_dim = int(pipe.embed.out_dim)
    try:
        check_message_limits(cfg.max_hits, pipe.max_neighbours, embed_dim)
    except ValueError as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise InputError(f"max_hits {cfg.max_hits}: {exc}") from None
    adapter_config = {"pipeline": pipe.to_dict(), "max_hits": cfg.max_hits,
                      "device": cfg.device, "torch_threads": cfg.torch_threads,
                      "batched": False}

    models: list[str] = [*(STAGE_MODELS[s].name for s in STAGES), PIPELINE_MODEL,
                         IDENTITY_MODEL]
    for name in (*models, ENSEMBLE_MODEL, IDENTITY_ENSEMBLE_MODEL):
        shutil.rmtree(repo / name, ignore_errors=True)
    for name in models:
        files: dict[str, Path | str] = {"model.py": _adapter_source(name)}
        stage = MODELS[name].stage
        if stage in NET_STAGES:
            files[f"{stage}.ts"] = nets[stage]
        if name == PIPELINE_MODEL:
            files.update({f"{net}.ts": nets[net] for net in NET_STAGES})
        batched = cfg.dynamic_batching and name in BATCHED_MODELS
        _write_model(repo, python_model_config(name, embed_dim, cfg,
                                               {**adapter_config, "batched": batched}), files)
    _write_model(repo, ensemble_config(embed_dim))
    _write_model(repo, identity_ensemble_config())

    if cfg.libtorch_variant:
        variant = Path(libtorch_dir) if libtorch_dir else repo.with_name(repo.name + "-libtorch")
        write_libtorch_variant(variant, nets, embed_dim, cfg)
    shutil.rmtree(scratch, ignore_errors=True)
    return repo


def write_floor_repository(directory: str | Path,
                           config: RepositoryConfig | None = None) -> Path:
    """A repository of only the floor models (``identity``, ``identity_ensemble5``).

    Needs no weights; starts in seconds (Triton's own cost, launcher checks).
    """
    cfg = config or RepositoryConfig()
    repo = Path(directory).resolve()
    for name in (IDENTITY_MODEL, IDENTITY_ENSEMBLE_MODEL):
        shutil.rmtree(repo / name, ignore_errors=True)
    _write_model(repo, python_model_config(IDENTITY_MODEL, 8, cfg, {}),
                 {"model.py": _adapter_source(IDENTITY_MODEL)})
    _write_model(repo, identity_ensemble_config())
    return repo


def write_libtorch_variant(directory: str | Path, nets: Mapping[str, Path], embed_dim: int,
                           config: RepositoryConfig | None = None) -> Path:
    """The three nets as ``pytorch_libtorch`` models (``<net>/1/model.pt``)."""
    cfg = config or RepositoryConfig()
    out = Path(directory).resolve()
    for stage in NET_STAGES:
        name = STAGE_MODELS[stage].name
        shutil.rmtree(out / name, ignore_errors=True)
        _write_model(out, libtorch_config(name, embed_dim, cfg),
                     {"model.pt": Path(nets[stage])})
    return out


def repository_models(directory: str | Path) -> list[str]:
    """Names of the models in a repository (folders holding ``config.pbtxt``)."""
    return sorted(p.parent.name for p in Path(directory).glob("*/config.pbtxt"))


def is_repository(directory: str | Path) -> bool:
    """True when ``directory`` holds every model this package serves."""
    need = set(MODELS)
    return need.issubset(repository_models(directory))
