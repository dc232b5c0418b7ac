"""Triton Python-backend adapters: each model's ``model.py`` imports one class from here.

An adapter only moves tensors between Triton and the package's stage functions (DLPack, no
copies), validates them, and turns bad input into a Triton error response; the algorithms
live in :mod:`exatrkx.core.stages` and :mod:`exatrkx.core.pipeline`. This module imports
``triton_python_backend_utils``, which exists only inside the backend stub process. The
floor models' adapters are in :mod:`exatrkx.serve.floors`.

Requests: each holds one event, every tensor with a leading event dimension of 1
(:mod:`exatrkx.contract`). Triton's dynamic batcher may hand an execution several requests;
the adapter checks each on its own (a bad one gets its own ``INVALID_ARG`` answer), then
runs the good ones as one disjoint graph (:meth:`exatrkx.core.pipeline.StageFn.batch`,
:meth:`exatrkx.core.pipeline.Pipeline.run_tensors`) in groups of at most ``batch_max_hits``
hits (:func:`exatrkx.core.batch.sub_batches`), and answers each request with its own event's
outputs. If a group fails anyway, its events run again one by one, so a failure stays with
the event that caused it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import triton_python_backend_utils as pb_utils
from torch.utils.dlpack import from_dlpack, to_dlpack

from exatrkx.config import PipelineConfig
from exatrkx.contract import (
    CONFIG_PARAMETER,
    EVENTS_PER_REQUEST,
    LABELS,
    MODELS,
    NET_STAGES,
    PIPELINE_MODEL,
    STAGE_MODELS,
    Stage,
)
from exatrkx.core.allocator import tune_allocator
from exatrkx.core.batch import sub_batches
from exatrkx.core.models import Nets, load_torchscript
from exatrkx.core.pipeline import Pipeline, StageFn, local_stages, stage
from exatrkx.errors import InputError
from exatrkx.serve.validate import validate_inputs

Tensor = torch.Tensor
#: One event's outputs: ``(name, tensor)`` in the model's output order.
Outputs = list[tuple[str, Tensor]]


def _tensor(request: Any, name: str) -> Tensor:
    """One event's input ``name`` (its event dimension dropped)."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        raise InputError(f"missing input tensor {name}")
    value = from_dlpack(tensor.to_dlpack())
    if value.ndim == 0 or int(value.shape[0]) != EVENTS_PER_REQUEST:
        raise InputError(f"{name} has shape {list(value.shape)}: send one event per request "
                         f"(a leading event dimension of {EVENTS_PER_REQUEST})")
    return value[0]


def _row_major(shape: Sequence[int]) -> list[int]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= int(size)
    return strides[::-1]


def _output(name: str, tensor: Tensor) -> Any:
    """One event's output with its event dimension, in exactly row-major strides (Triton's
    DLPack import checks them all; torch's ``is_contiguous`` ignores those of dimensions of
    size 0 and 1). Copied only when its strides differ and it holds data."""
    wire = tensor.unsqueeze(0)
    strides = _row_major(wire.shape)
    if list(wire.stride()) != strides:
        wire = (wire.as_strided(wire.shape, strides) if wire.numel() == 0
                else torch.empty(wire.shape, dtype=wire.dtype, device=wire.device).copy_(wire))
    return pb_utils.Tensor.from_dlpack(name, to_dlpack(wire))


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


def _response(outputs: Outputs) -> Any:
    return pb_utils.InferenceResponse(output_tensors=[_output(n, t) for n, t in outputs])


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
        self.batch_max_hits = max(1, int(self.settings.get("batch_max_hits", 1 << 62)))
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

    def pipeline_stage(self, name: Stage) -> StageFn:
        """The package's stage ``name`` with this model's settings and net bound."""
        net = self.load_net(name) if name in NET_STAGES else None
        return stage(name, self.config, net)

    def load_net(self, name: Stage) -> torch.nn.Module:
        return load_torchscript(self.version_dir / f"{name}.ts", self.device)

    def _inputs(self, request: Any) -> list[Tensor]:
        return [_tensor(request, name).to(self.device) for name in self.inputs]

    def execute(self, requests: list[Any]) -> list[Any]:
        """Every request's answer: its outputs, or an error naming its problem."""
        responses: list[Any] = [None] * len(requests)
        good: list[tuple[int, list[Tensor]]] = []
        for i, request in enumerate(requests):
            try:
                tensors = self._inputs(request)
                self.validate(*tensors)
            except Exception as exc:  # keep the stub alive, report the failure to the client
                responses[i] = _error(exc)
            else:
                good.append((i, tensors))
        sizes = [int(tensors[0].shape[0]) for _, tensors in good]
        for group in sub_batches(sizes, self.batch_max_hits):
            answers = self._answer([good[j][1] for j in group])
            for j, answer in zip(group, answers, strict=True):
                responses[good[j][0]] = answer
        return responses

    def _answer(self, batch: list[list[Tensor]]) -> list[Any]:
        """Responses of a group of checked events; one by one if the group fails."""
        try:
            return [_response(outputs) for outputs in self.run_batch(batch)]
        except Exception as exc:
            if len(batch) == 1:
                return [_error(exc)]
            return [self._answer([event])[0] for event in batch]

    def validate(self, *tensors: Tensor) -> None:
        """Check one request's inputs (raises InputError; see :mod:`exatrkx.serve.validate`)."""
        validate_inputs(self.model_name, tensors, self.max_hits, self.config.max_neighbours,
                        int(self.config.embed.out_dim))

    def run_batch(self, batch: Sequence[Sequence[Tensor]]) -> list[Outputs]:
        """Checked events (their inputs in the contract's order) -> each one's outputs."""
        raise NotImplementedError


class _StageAdapter(_Adapter):
    """A stage model: the stage's inputs -> its output, by the package's stage callable."""

    stage: Stage

    def setup(self) -> None:
        self.run_stage = self.pipeline_stage(self.stage)

    def run_batch(self, batch: Sequence[Sequence[Tensor]]) -> list[Outputs]:
        return [[(self.outputs[0], out)] for out in self.run_stage.batch(batch)]


class EmbedModel(_StageAdapter):
    """``embed``: FEATURES -> EMBEDDING."""

    stage = "embed"
    model_name = STAGE_MODELS["embed"].name


class BuildModel(_StageAdapter):
    """``build``: EMBEDDING -> EDGES (fixed-radius neighbours, each event on its own)."""

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

    def run_batch(self, batch: Sequence[Sequence[Tensor]]) -> list[Outputs]:
        labels = self.pipeline.run_tensors([event[0] for event in batch])
        return [[(LABELS, lab)] for lab in labels]
