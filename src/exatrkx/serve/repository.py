"""Write the Triton model repository that serves the pipeline.

Layout (``<dir>``)::

    embed/  build/  filter/  gnn/  label/    one Python-backend model per stage
    exatrkx/                                 ensemble of the five (FEATURES -> LABELS)
    exatrkx_pipeline/                        the whole pipeline in one Python-backend model
    identity/  identity_ensemble5/           Triton's floor: no work, one hop / five hops
    touch/  touch_<stage>/  touch_ensemble5/ the data floor: every input read, the real
                                             stages' output sizes written; 1 hop / 5 steps

Every ``<model>/1/model.py`` is a two-line adapter that imports its class from
:mod:`exatrkx.serve.adapters`; the nets travel as TorchScript files beside it. The pipeline
settings (radius, k, cuts) come from the weights' metadata and reach the models through the
``exatrkx_config`` parameter of each ``config.pbtxt``.

With ``libtorch_variant`` a second folder (``<dir>-libtorch`` unless told otherwise) holds the
three nets as ``platform: "pytorch_libtorch"`` models (``INPUT__0``.. / ``OUTPUT__0``, one event
per request without an event dimension) for full Triton installs, which have the libtorch
backend this wheel's server lacks.

Batching: every model takes one event per request with a leading event dimension
(:mod:`exatrkx.contract`), as Triton's batch dimension (``max_batch_size`` =
:attr:`RepositoryConfig.max_batch_events`); the inputs allow ragged batches (events differ in
hits and edges). With ``dynamic_batching`` Triton's dynamic batcher hands a model every
request waiting for it, up to ``max_batch_events``, after waiting at most
``max_queue_delay_us`` for more; the Python backend gives the adapter the list of requests,
and the adapter runs them as one disjoint graph (:mod:`exatrkx.core.batch`) in groups of at
most :attr:`RepositoryConfig.forward_hits` hits. Without it each execution gets one request.
The ensembles batch in their steps: each stage model batches what the ensemble's requests
send it. The same holds for ``KIND_GPU`` instances (the joined tensors live on the GPU).

The defaults (:data:`DEFAULT_INSTANCES`, :data:`DEFAULT_BATCHING`, ...) are the best served
setting of the study's throughput scan on the 2-core development machine (see the README);
``exatrkx serve`` and the study's main server use them.
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
    FLOOR_MODEL_NAMES,
    IDENTITY_ENSEMBLE_MODEL,
    IDENTITY_MODEL,
    MODELS,
    NET_STAGES,
    PIPELINE_MODEL,
    SERVED_MODELS,
    STAGE_MODELS,
    STAGES,
    TENSORS,
    TOUCH_ENSEMBLE_MODEL,
    TOUCH_MODEL,
    TOUCH_STEP_MODELS,
    ModelSpec,
    Stage,
    check_message_limits,
)
from exatrkx.core.models import export_torchscript, load_models
from exatrkx.errors import InputError

Device = Literal["cpu", "cuda"]

_TRITON_TYPES = {"FP32": mc.DataType.TYPE_FP32, "INT64": mc.DataType.TYPE_INT64}

#: Model -> adapter class in :mod:`exatrkx.serve.adapters` (the floor models':
#: :mod:`exatrkx.serve.floors`), for every Python-backend model.
ADAPTERS = {
    STAGE_MODELS["embed"].name: "EmbedModel",
    STAGE_MODELS["build"].name: "BuildModel",
    STAGE_MODELS["filter"].name: "FilterModel",
    STAGE_MODELS["gnn"].name: "GNNModel",
    STAGE_MODELS["label"].name: "LabelModel",
    PIPELINE_MODEL: "PipelineModel",
    IDENTITY_MODEL: "IdentityModel",
    TOUCH_MODEL: "TouchModel",
    **{spec.name: "TouchModel" for spec in TOUCH_STEP_MODELS.values()},
}
#: Models Triton's dynamic batcher serves when a repository batches: every Python-backend
#: model (the ensembles batch in their steps).
BATCHED_MODELS: tuple[str, ...] = tuple(ADAPTERS)

#: Model instances per model by default (the study's best served setting).
DEFAULT_INSTANCES = 1
#: Dynamic batching by default (the study's best served setting).
DEFAULT_BATCHING = True
#: The batcher's wait for more requests (microseconds). 0: no wait; a model that is busy
#: still gets every request that queued meanwhile in its next execution.
DEFAULT_QUEUE_DELAY_US = 0
#: Events per execution at most (Triton's ``max_batch_size``).
DEFAULT_MAX_BATCH_EVENTS = 16
#: Hits per forward pass at most, by device: on CPU a larger joined graph falls out of the
#: caches and runs slower per event (measured: ``benchmarks/bench_batching.py``).
DEFAULT_FORWARD_HITS: dict[str, int] = {"cpu": 2048, "cuda": 262_144}


@dataclass(frozen=True)
class RepositoryConfig:
    """Serving settings of the repository.

    Attributes:
        instances: model instances (stub processes) per model.
        instances_per_model: overrides of ``instances`` by model name.
        dynamic_batching: Triton's dynamic batcher on every Python-backend model (see the
            module docstring).
        max_queue_delay_us: the batcher's wait for more requests.
        preferred_batch_sizes: the batcher's preferred batch sizes (events; empty: none).
        max_batch_events: events per execution at most (``max_batch_size``).
        batch_max_hits: hits per forward pass at most (None: :data:`DEFAULT_FORWARD_HITS`
            of the device); a larger event runs alone.
        max_hits: events with more hits are refused before any work is done; the repository
            writer refuses a limit whose largest request or response (one event each) could
            exceed gRPC's message limit (:func:`exatrkx.contract.check_message_limits`).
        device: ``"cpu"`` or ``"cuda"`` (instance kind and where the adapters compute).
        torch_threads: intra-op threads of torch in each stub process (0: torch's default).
        libtorch_variant: also write the libtorch-backend variant of the nets.
        floors: also write the floor models (identity and touch).
    """

    instances: int = DEFAULT_INSTANCES
    instances_per_model: Mapping[str, int] = field(default_factory=dict)
    dynamic_batching: bool = DEFAULT_BATCHING
    max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    preferred_batch_sizes: tuple[int, ...] = ()
    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS
    batch_max_hits: int | None = None
    max_hits: int = DEFAULT_MAX_HITS
    device: Device = "cpu"
    torch_threads: int = 1
    libtorch_variant: bool = True
    floors: bool = True

    def __post_init__(self) -> None:
        if self.instances < 1 or any(v < 1 for v in self.instances_per_model.values()):
            raise InputError("model instances must be >= 1")
        if self.max_hits < 1:
            raise InputError("max_hits must be >= 1")
        if self.device not in ("cpu", "cuda"):
            raise InputError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.torch_threads < 0:
            raise InputError("torch_threads must be >= 0")
        if self.max_batch_events < 1:
            raise InputError("max_batch_events must be >= 1")
        if self.max_queue_delay_us < 0:
            raise InputError("max_queue_delay_us must be >= 0")
        if any(not 1 <= b <= self.max_batch_events for b in self.preferred_batch_sizes):
            raise InputError(f"preferred batch sizes must be 1..{self.max_batch_events} "
                             f"(max_batch_events), got {list(self.preferred_batch_sizes)}")
        if self.batch_max_hits is not None and self.batch_max_hits < 1:
            raise InputError("batch_max_hits must be >= 1")

    def count(self, model: str) -> int:
        """Instances of ``model``."""
        return int(self.instances_per_model.get(model, self.instances))

    @property
    def forward_hits(self) -> int:
        """Hits per forward pass at most (``batch_max_hits`` or the device's default)."""
        return self.batch_max_hits or DEFAULT_FORWARD_HITS[self.device]


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


def _on_gpu(name: str, settings: RepositoryConfig) -> bool:
    """Whether ``name`` runs on the GPU: every model of a ``cuda`` repository but the floor
    models (numpy only: they take and give CPU tensors on every host)."""
    return settings.device == "cuda" and name not in FLOOR_MODEL_NAMES


def _instances(cfg: mc.ModelConfig, name: str, settings: RepositoryConfig) -> None:
    group = cfg.instance_group.add()
    group.count = settings.count(name)
    group.kind = (mc.ModelInstanceGroup.Kind.KIND_GPU if _on_gpu(name, settings)
                  else mc.ModelInstanceGroup.Kind.KIND_CPU)


def python_model_config(name: str, embed_dim: int, settings: RepositoryConfig,
                        adapter_config: dict[str, Any]) -> mc.ModelConfig:
    """``config.pbtxt`` of one Python-backend model (one event per request, batched by
    Triton when ``settings.dynamic_batching``)."""
    cfg = mc.ModelConfig(name=name, backend="python", max_batch_size=settings.max_batch_events)
    _io(cfg, name, embed_dim)
    for tensor in cfg.input:  # events differ in hits and edges: batches are ragged
        tensor.allow_ragged_batch = any(d < 0 for d in tensor.dims)
    _instances(cfg, name, settings)
    if settings.dynamic_batching:
        cfg.dynamic_batching.max_queue_delay_microseconds = settings.max_queue_delay_us
        cfg.dynamic_batching.preferred_batch_size.extend(settings.preferred_batch_sizes)
    cfg.parameters[CONFIG_PARAMETER].string_value = json.dumps(adapter_config, sort_keys=True)
    if _on_gpu(name, settings):  # inputs may stay on the GPU: the adapters join them there
        cfg.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value = "no"
    return cfg


Steps = list[tuple[str, dict[str, str], dict[str, str]]]


def _ensemble(name: str, embed_dim: int, steps: Steps,
              settings: RepositoryConfig) -> mc.ModelConfig:
    cfg = mc.ModelConfig(name=name, platform="ensemble",
                         max_batch_size=settings.max_batch_events)
    _io(cfg, name, embed_dim)
    for model, input_map, output_map in steps:
        step = cfg.ensemble_scheduling.step.add()
        step.model_name = model
        step.model_version = -1
        step.input_map.update(input_map)
        step.output_map.update(output_map)
    return cfg


def ensemble_steps(ensemble: str = ENSEMBLE_MODEL,
                   steps: Mapping[Stage, ModelSpec] = STAGE_MODELS) -> Steps:
    """An ensemble's wiring: each stage's model in order, its inputs taken from the
    ensemble's inputs or an earlier step's output (internal names in lower case), the last
    output being the ensemble's output. ``exatrkx`` chains the stage models,
    ``touch_ensemble5`` the touch steps."""
    spec = MODELS[ensemble]

    def internal(tensor: str) -> str:
        return tensor if tensor in (*spec.inputs, *spec.outputs) else tensor.lower()

    return [(steps[stage].name, {t: internal(t) for t in steps[stage].inputs},
             {t: internal(t) for t in steps[stage].outputs}) for stage in STAGES]


def ensemble_config(embed_dim: int, settings: RepositoryConfig | None = None
                    ) -> mc.ModelConfig:
    """The ``exatrkx`` ensemble: the five stage models chained, FEATURES -> LABELS."""
    return _ensemble(ENSEMBLE_MODEL, embed_dim, ensemble_steps(),
                     settings or RepositoryConfig())


def touch_ensemble_config(embed_dim: int, settings: RepositoryConfig | None = None
                          ) -> mc.ModelConfig:
    """``touch_ensemble5``: the five touch steps chained like the stages."""
    return _ensemble(TOUCH_ENSEMBLE_MODEL, embed_dim,
                     ensemble_steps(TOUCH_ENSEMBLE_MODEL, TOUCH_STEP_MODELS),
                     settings or RepositoryConfig())


def identity_ensemble_config(steps: int = FLOOR_ENSEMBLE_STEPS,
                             settings: RepositoryConfig | None = None) -> mc.ModelConfig:
    """``identity_ensemble5``: ``steps`` identity models chained, FEATURES -> OUTPUT."""
    identity = MODELS[IDENTITY_MODEL]
    (src_name,), (dst_name,) = identity.inputs, identity.outputs
    chain = []
    for i in range(steps):
        src = src_name if i == 0 else f"hop{i}"
        dst = dst_name if i == steps - 1 else f"hop{i + 1}"
        chain.append((IDENTITY_MODEL, {src_name: src}, {dst_name: dst}))
    return _ensemble(IDENTITY_ENSEMBLE_MODEL, 0, chain, settings or RepositoryConfig())


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
    _instances(cfg, name, settings)
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
    module = "floors" if model in FLOOR_MODEL_NAMES else "adapters"
    return (f'"""Triton Python-backend model ``{model}``: adapter over the exatrkx package."""\n\n'
            f"from exatrkx.serve.{module} import {cls} as TritonPythonModel\n\n"
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
            (``instances=2``, ``max_hits=50000``, ``dynamic_batching=False``, ...).
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
                      "batch_max_hits": cfg.forward_hits}

    for name in MODELS:
        shutil.rmtree(repo / name, ignore_errors=True)
    for name in ADAPTERS:
        if name not in SERVED_MODELS and not cfg.floors:
            continue
        files: dict[str, Path | str] = {"model.py": _adapter_source(name)}
        spec = MODELS[name]
        if spec.kind == "stage" and spec.stage in NET_STAGES:
            files[f"{spec.stage}.ts"] = nets[spec.stage]
        if name == PIPELINE_MODEL:
            files.update({f"{net}.ts": nets[net] for net in NET_STAGES})
        _write_model(repo, python_model_config(name, embed_dim, cfg, adapter_config), files)
    _write_model(repo, ensemble_config(embed_dim, cfg))
    if cfg.floors:
        _write_model(repo, identity_ensemble_config(settings=cfg))
        _write_model(repo, touch_ensemble_config(embed_dim, cfg))

    if cfg.libtorch_variant:
        variant = Path(libtorch_dir) if libtorch_dir else repo.with_name(repo.name + "-libtorch")
        write_libtorch_variant(variant, nets, embed_dim, cfg)
    shutil.rmtree(scratch, ignore_errors=True)
    return repo


def write_floor_repository(directory: str | Path,
                           config: RepositoryConfig | None = None) -> Path:
    """A repository of only the identity floor models (``identity``, ``identity_ensemble5``).

    Needs no weights; starts in seconds (Triton's own cost, launcher checks).
    """
    cfg = config or RepositoryConfig()
    repo = Path(directory).resolve()
    for name in (IDENTITY_MODEL, IDENTITY_ENSEMBLE_MODEL):
        shutil.rmtree(repo / name, ignore_errors=True)
    _write_model(repo, python_model_config(IDENTITY_MODEL, 8, cfg, {}),
                 {"model.py": _adapter_source(IDENTITY_MODEL)})
    _write_model(repo, identity_ensemble_config(settings=cfg))
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
    """True when ``directory`` holds every model that serves the pipeline (the floor models
    are optional)."""
    return set(SERVED_MODELS).issubset(repository_models(directory))
