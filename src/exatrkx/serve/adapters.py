"""Triton Python-backend adapters: each model's ``model.py`` imports one class from here.

An adapter only moves tensors between Triton and the package's stage functions (DLPack, no
copies), validates them, and turns bad input into a Triton error response; the algorithms
live in :mod:`exatrkx.core.stages` and :mod:`exatrkx.core.pipeline`. This module imports
``triton_python_backend_utils``, which exists only inside the backend stub process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import triton_python_backend_utils as pb_utils
from torch.utils.dlpack import from_dlpack, to_dlpack

from exatrkx.config import PipelineConfig
from exatrkx.contract import (
    CONFIG_PARAMETER,
    IDENTITY_MODEL,
    MODELS,
    NET_STAGES,
    PIPELINE_MODEL,
    STAGE_MODELS,
    Stage,
)
from exatrkx.core.allocator import tune_allocator
from exatrkx.core.models import Nets, load_torchscript
from exatrkx.core.pipeline import Pipeline, local_stages, stage
from exatrkx.errors import InputError
from exatrkx.serve.validate import validate_inputs


def _tensor(request: Any, name: str) -> torch.Tensor:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        raise InputError(f"missing input tensor {name}")
    return from_dlpack(tensor.to_dlpack())


def _output(name: str, tensor: torch.Tensor) -> Any:
    return pb_utils.Tensor.from_dlpack(name, to_dlpack(tensor.contiguous()))


def _error(exc: Exception) -> Any:
    """A Triton error response: INVALID_ARG for bad input, INTERNAL for a failure."""
    if isinstance(exc, InputError):
        code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
        message = str(exc)
    else:
        code = getattr(pb_utils.TritonError, "INTERNAL", None)
        message = f"{type(exc).__name__}: {exc}"
    error = (pb_utils.TritonError(message) if code is None
             else pb_utils.TritonError(message, code))
    return pb_utils.InferenceResponse(error=error)


class _Adapter:
    """Common part: settings, threads, the device and the request loop."""

    #: The model this adapter serves (a key of :data:`exatrkx.contract.MODELS`).
    model_name = ""

    @property
    def inputs(self) -> tuple[str, ...]:
        return MODELS[self.model_name].inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        return MODELS[self.model_name].outputs

    def initialize(self, args: dict[str, Any]) -> None:
        tune_allocator()
        model_config = json.loads(args["model_config"])
        params = model_config.get("parameters", {})
        raw = params.get(CONFIG_PARAMETER, {}).get("string_value", "{}")
        self.settings: dict[str, Any] = json.loads(raw)
        self.config = PipelineConfig.from_dict(self.settings.get("pipeline", {}))
        self.max_hits = int(self.settings.get("max_hits", 1 << 62))
        self.batched = bool(self.settings.get("batched", False))
        threads = int(self.settings.get("torch_threads", 0))
        if threads:
            torch.set_num_threads(threads)
        if args.get("model_instance_kind") == "GPU":
            self.device = torch.device("cuda", int(args.get("model_instance_device_id", 0)))
        else:
            self.device = torch.device("cpu")
        self.version_dir = Path(args["model_repository"]) / args["model_version"]
        self.setup()

    def setup(self) -> None:
        """Load what the model needs (nets)."""

    def pipeline_stage(self, name: Stage) -> Callable[..., torch.Tensor]:
        """The package's stage ``name`` with this model's settings and net bound."""
        net = self.load_net(name) if name in NET_STAGES else None
        return stage(name, self.config, net)

    def load_net(self, name: Stage) -> torch.nn.Module:
        return load_torchscript(self.version_dir / f"{name}.ts", self.device)

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """One request's inputs -> its named outputs."""
        raise NotImplementedError

    def _inputs(self, request: Any) -> list[torch.Tensor]:
        return [_tensor(request, name).to(self.device) for name in self.inputs]

    def execute(self, requests: list[Any]) -> list[Any]:
        if self.batched and len(requests) > 1:
            return self._execute_batched(requests)
        return [self._respond(request) for request in requests]

    def _respond(self, request: Any) -> Any:
        try:
            tensors = self._inputs(request)
            self.validate(*tensors)
            outputs = self.run(*tensors)
        except Exception as exc:  # keep the stub alive, report the failure to the client
            return _error(exc)
        return pb_utils.InferenceResponse(output_tensors=[_output(n, t) for n, t in outputs])

    def _execute_batched(self, requests: list[Any]) -> list[Any]:
        """Validate each request, run the good ones as one batch, split the results."""
        good: list[tuple[int, list[torch.Tensor]]] = []
        responses: list[Any] = [None] * len(requests)
        for i, request in enumerate(requests):
            try:
                tensors = self._inputs(request)
                self.validate(*tensors)
                good.append((i, tensors))
            except InputError as exc:
                responses[i] = _error(exc)
        if good:
            try:
                results = self.run_batch([t for _, t in good])
                for (i, _), outputs in zip(good, results, strict=True):
                    responses[i] = pb_utils.InferenceResponse(
                        output_tensors=[_output(n, t) for n, t in outputs])
            except Exception as exc:
                for i, _ in good:
                    responses[i] = _error(exc)
        return responses

    def validate(self, *tensors: torch.Tensor) -> None:
        """Check one request's inputs (raises InputError; see :mod:`exatrkx.serve.validate`)."""
        validate_inputs(self.model_name, tensors, self.max_hits, self.config.max_neighbours,
                        int(self.config.embed.out_dim))

    def run_batch(self, batch: list[list[torch.Tensor]]) -> list[list[tuple[str, torch.Tensor]]]:
        """Several requests at once (adapters that can batch override this)."""
        return [self.run(*tensors) for tensors in batch]


class IdentityModel(_Adapter):
    """``identity``: FEATURES -> OUTPUT, no work and no checks (Triton's one-hop floor)."""

    model_name = IDENTITY_MODEL

    def initialize(self, args: dict[str, Any]) -> None:
        self.batched = False

    def validate(self, *tensors: torch.Tensor) -> None:
        """None: the floor measures Triton alone (Triton still checks dtype and shape)."""

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return [(self.outputs[0], tensors[0])]

    def _inputs(self, request: Any) -> list[torch.Tensor]:
        return [_tensor(request, name) for name in self.inputs]


class _StageAdapter(_Adapter):
    """A stage model: the stage's inputs -> its output, by the package's stage callable."""

    stage: Stage

    def setup(self) -> None:
        self.run_stage = self.pipeline_stage(self.stage)

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return [(self.outputs[0], self.run_stage(*tensors))]


class EmbedModel(_StageAdapter):
    """``embed``: FEATURES -> EMBEDDING (batches of events concatenated: per-hit work)."""

    stage = "embed"
    model_name = STAGE_MODELS["embed"].name

    def run_batch(self, batch: list[list[torch.Tensor]]) -> list[list[tuple[str, torch.Tensor]]]:
        sizes = [int(t[0].shape[0]) for t in batch]
        out = self.run_stage(torch.cat([t[0] for t in batch]))
        return [[(self.outputs[0], part)] for part in torch.split(out, sizes)]


class BuildModel(_StageAdapter):
    """``build``: EMBEDDING -> EDGES (fixed-radius neighbours)."""

    stage = "build"
    model_name = STAGE_MODELS["build"].name


class FilterModel(_StageAdapter):
    """``filter``: FEATURES, EDGES -> EDGES_KEPT."""

    stage = "filter"
    model_name = STAGE_MODELS["filter"].name


class GNNModel(_StageAdapter):
    """``gnn``: FEATURES, EDGES_KEPT -> SCORES."""

    stage = "gnn"
    model_name = STAGE_MODELS["gnn"].name


class LabelModel(_StageAdapter):
    """``label``: FEATURES, EDGES_KEPT, SCORES -> LABELS (the package's label stage)."""

    stage = "label"
    model_name = STAGE_MODELS["label"].name


class PipelineModel(_Adapter):
    """``exatrkx_pipeline``: FEATURES -> LABELS, the whole in-process pipeline."""

    model_name = PIPELINE_MODEL

    def setup(self) -> None:
        nets = Nets(*(self.load_net(name) for name in NET_STAGES))
        self.pipeline = Pipeline(local_stages(nets, self.config, self.device), self.device)

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        labels = self.pipeline.run(tensors[0].cpu().numpy()).labels
        return [(self.outputs[0], torch.from_numpy(labels))]
