"""Triton Python-backend adapters: each model's ``model.py`` imports one class from here.

An adapter only moves tensors between Triton and the package's stage functions (DLPack, no
copies), validates them, and turns bad input into a Triton error response; the algorithms
live in :mod:`exatrkx.stages` and :mod:`exatrkx.pipeline`. This module imports
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

from exatrkx.allocator import tune_allocator
from exatrkx.config import PipelineConfig
from exatrkx.errors import InputError
from exatrkx.serve.repository import CONFIG_PARAMETER
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

    inputs: tuple[str, ...] = ()
    #: Key of :data:`exatrkx.serve.validate.MODEL_INPUTS` (the model's input checks).
    model_name = ""

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

    def pipeline_stage(self, name: str, net: torch.nn.Module | None = None
                       ) -> Callable[..., torch.Tensor]:
        """The package's stage ``name`` with this model's pipeline settings bound."""
        from exatrkx.pipeline import stage

        return stage(name, self.config, net)

    def load_net(self, name: str) -> torch.nn.Module:
        from exatrkx.models import load_torchscript

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

    def initialize(self, args: dict[str, Any]) -> None:
        self.batched = False

    def validate(self, *tensors: torch.Tensor) -> None:
        """None: the floor measures Triton alone (Triton still checks dtype and shape)."""

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return [("OUTPUT", tensors[0])]

    def _inputs(self, request: Any) -> list[torch.Tensor]:
        return [_tensor(request, "FEATURES")]


class EmbedModel(_Adapter):
    """``embed``: FEATURES -> EMBEDDING."""

    inputs = ("FEATURES",)
    model_name = "embed"

    def setup(self) -> None:
        self.stage = self.pipeline_stage("embed", self.load_net("embed"))

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return [("EMBEDDING", self.stage(tensors[0]))]

    def run_batch(self, batch: list[list[torch.Tensor]]) -> list[list[tuple[str, torch.Tensor]]]:
        sizes = [int(t[0].shape[0]) for t in batch]
        out = self.stage(torch.cat([t[0] for t in batch]))
        return [[("EMBEDDING", part)] for part in torch.split(out, sizes)]


class BuildModel(_Adapter):
    """``build``: EMBEDDING -> EDGES (fixed-radius neighbours)."""

    inputs = ("EMBEDDING",)
    model_name = "build"

    def setup(self) -> None:
        self.stage = self.pipeline_stage("build")

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return [("EDGES", self.stage(tensors[0]))]


class FilterModel(_Adapter):
    """``filter``: FEATURES, EDGES -> EDGES_KEPT."""

    inputs = ("FEATURES", "EDGES")
    model_name = "filter"

    def setup(self) -> None:
        self.stage = self.pipeline_stage("filter", self.load_net("filter"))

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return [("EDGES_KEPT", self.stage(tensors[0], tensors[1]))]


class GNNModel(_Adapter):
    """``gnn``: FEATURES, EDGES_KEPT -> SCORES."""

    inputs = ("FEATURES", "EDGES_KEPT")
    model_name = "gnn"

    def setup(self) -> None:
        self.stage = self.pipeline_stage("gnn", self.load_net("gnn"))

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return [("SCORES", self.stage(tensors[0], tensors[1]))]


class LabelModel(_Adapter):
    """``label``: FEATURES, EDGES_KEPT, SCORES -> LABELS (the package's label stage)."""

    inputs = ("FEATURES", "EDGES_KEPT", "SCORES")
    model_name = "label"

    def setup(self) -> None:
        self.stage = self.pipeline_stage("label")

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return [("LABELS", self.stage(*tensors))]


class PipelineModel(_Adapter):
    """``exatrkx_pipeline``: FEATURES -> LABELS, the whole in-process pipeline."""

    inputs = ("FEATURES",)
    model_name = "exatrkx_pipeline"

    def setup(self) -> None:
        from exatrkx.models import Nets
        from exatrkx.pipeline import Pipeline, local_stages

        nets = Nets(*(self.load_net(name) for name in ("embed", "filter", "gnn")))
        self.pipeline = Pipeline(local_stages(nets, self.config, self.device), self.device)

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        labels = self.pipeline.run(tensors[0].cpu().numpy()).labels
        return [("LABELS", torch.from_numpy(labels))]
