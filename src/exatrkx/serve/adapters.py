"""Triton Python-backend adapters: each model's ``model.py`` imports one class from here.

An adapter only moves tensors between Triton and the package's stage functions (DLPack, no
copies), validates them, and turns bad input into a Triton error response; the algorithms
live in :mod:`exatrkx.stages` and :mod:`exatrkx.pipeline`. This module imports
``triton_python_backend_utils``, which exists only inside the backend stub process.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import triton_python_backend_utils as pb_utils
from torch.utils.dlpack import from_dlpack, to_dlpack

from exatrkx.config import PipelineConfig
from exatrkx.errors import InputError
from exatrkx.serve.repository import CONFIG_PARAMETER


def _tensor(request: Any, name: str) -> torch.Tensor:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        raise InputError(f"missing input tensor {name}")
    return from_dlpack(tensor.to_dlpack())


def _output(name: str, tensor: torch.Tensor) -> Any:
    return pb_utils.Tensor.from_dlpack(name, to_dlpack(tensor.contiguous()))


def check_features(features: torch.Tensor, max_hits: int) -> None:
    """Refuse empty, oversized or non-finite events (before any work is done)."""
    n = int(features.shape[0])
    if n == 0:
        raise InputError("FEATURES is empty (an event needs at least one hit)")
    if n > max_hits:
        raise InputError(f"event has {n} hits, more than this server's limit of {max_hits}")
    # one reduction on the fast path: a NaN or an infinity makes the sum non-finite
    if not math.isfinite(float(features.sum())):
        bad = ~torch.isfinite(features).all(dim=1)
        if bool(bad.any()):
            row = int(torch.nonzero(bad)[0, 0])
            raise InputError(f"FEATURES has a non-finite (NaN or infinite) value in row {row}")


def check_edges(edges: torch.Tensor, num_hits: int, name: str) -> None:
    """Edges must index existing hits."""
    if edges.numel():
        low, high = torch.aminmax(edges)
        if int(low) < 0 or int(high) >= num_hits:
            raise InputError(f"{name} refers to hits outside 0..{num_hits - 1}")


def check_rows(tensor: torch.Tensor, expected: int, name: str) -> None:
    if int(tensor.shape[0]) != expected:
        raise InputError(f"{name} has {int(tensor.shape[0])} rows, expected {expected}")


class _Adapter:
    """Common part: settings, threads, the device and the request loop."""

    inputs: tuple[str, ...] = ()

    def initialize(self, args: dict[str, Any]) -> None:
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
        return [self._respond(lambda r=request: self.run(*self._inputs(r)))
                for request in requests]

    def _respond(self, work: Any) -> Any:
        try:
            outputs = work()
        except InputError as exc:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc)))
        except Exception as exc:  # keep the stub alive, report the failure to the client
            return pb_utils.InferenceResponse(
                error=pb_utils.TritonError(f"{type(exc).__name__}: {exc}"))
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
                responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc)))
        if good:
            try:
                results = self.run_batch([t for _, t in good])
                for (i, _), outputs in zip(good, results, strict=True):
                    responses[i] = pb_utils.InferenceResponse(
                        output_tensors=[_output(n, t) for n, t in outputs])
            except Exception as exc:
                for i, _ in good:
                    responses[i] = pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"{type(exc).__name__}: {exc}"))
        return responses

    def validate(self, *tensors: torch.Tensor) -> None:
        """Check one request's inputs (raises InputError)."""

    def run_batch(self, batch: list[list[torch.Tensor]]) -> list[list[tuple[str, torch.Tensor]]]:
        """Several requests at once (adapters that can batch override this)."""
        return [self.run(*tensors) for tensors in batch]


class IdentityModel(_Adapter):
    """``identity``: FEATURES -> OUTPUT, no work (Triton's one-hop floor)."""

    def initialize(self, args: dict[str, Any]) -> None:
        self.batched = False

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return [("OUTPUT", tensors[0])]

    def _inputs(self, request: Any) -> list[torch.Tensor]:
        return [_tensor(request, "FEATURES")]


class EmbedModel(_Adapter):
    """``embed``: FEATURES -> EMBEDDING."""

    inputs = ("FEATURES",)

    def setup(self) -> None:
        from exatrkx.stages.embed import embed

        self.net = self.load_net("embed")
        self.stage = embed

    def validate(self, *tensors: torch.Tensor) -> None:
        check_features(tensors[0], self.max_hits)

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        self.validate(*tensors)
        return [("EMBEDDING", self.stage(self.net, tensors[0]))]

    def run_batch(self, batch: list[list[torch.Tensor]]) -> list[list[tuple[str, torch.Tensor]]]:
        sizes = [int(t[0].shape[0]) for t in batch]
        out = self.stage(self.net, torch.cat([t[0] for t in batch]))
        return [[("EMBEDDING", part)] for part in torch.split(out, sizes)]


class BuildModel(_Adapter):
    """``build``: EMBEDDING -> EDGES (fixed-radius neighbours)."""

    inputs = ("EMBEDDING",)

    def setup(self) -> None:
        from exatrkx.stages.build import build_edges

        self.stage = build_edges

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        emb = tensors[0]
        if int(emb.shape[0]) > self.max_hits:
            raise InputError(f"EMBEDDING has {int(emb.shape[0])} rows, more than this "
                             f"server's limit of {self.max_hits}")
        if not math.isfinite(float(emb.sum())) and not bool(torch.isfinite(emb).all()):
            raise InputError("EMBEDDING has a non-finite (NaN or infinite) value")
        edges = self.stage(emb, self.config.radius, self.config.max_neighbours)
        return [("EDGES", edges)]


class FilterModel(_Adapter):
    """``filter``: FEATURES, EDGES -> EDGES_KEPT."""

    inputs = ("FEATURES", "EDGES")

    def setup(self) -> None:
        from exatrkx.stages.filter import filter_edges

        self.net = self.load_net("filter")
        self.stage = filter_edges

    def validate(self, *tensors: torch.Tensor) -> None:
        features, edges = tensors
        check_features(features, self.max_hits)
        check_edges(edges, int(features.shape[0]), "EDGES")

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        self.validate(*tensors)
        kept, _ = self.stage(self.net, tensors[0], tensors[1], self.config.filter_cut)
        return [("EDGES_KEPT", kept)]


class GNNModel(_Adapter):
    """``gnn``: FEATURES, EDGES_KEPT -> SCORES."""

    inputs = ("FEATURES", "EDGES_KEPT")

    def setup(self) -> None:
        from exatrkx.stages.gnn import classify_edges

        self.net = self.load_net("gnn")
        self.stage = classify_edges

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        features, edges = tensors
        check_features(features, self.max_hits)
        check_edges(edges, int(features.shape[0]), "EDGES_KEPT")
        return [("SCORES", self.stage(self.net, features, edges))]


class LabelModel(_Adapter):
    """``label``: FEATURES, EDGES_KEPT, SCORES -> LABELS (:func:`label_event`)."""

    inputs = ("FEATURES", "EDGES_KEPT", "SCORES")

    def setup(self) -> None:
        from exatrkx.stages.label import label_event

        self.stage = label_event

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        features, edges, scores = tensors
        n = int(features.shape[0])
        if n > self.max_hits:
            raise InputError(f"event has {n} hits, more than this server's limit of "
                             f"{self.max_hits}")
        check_edges(edges, n, "EDGES_KEPT")
        if int(scores.shape[0]) != int(edges.shape[1]):
            raise InputError(f"SCORES has {int(scores.shape[0])} values for "
                             f"{int(edges.shape[1])} edges")
        return [("LABELS", self.stage(features, edges, scores, self.config.gnn_cut,
                                      self.config.label_method))]


class PipelineModel(_Adapter):
    """``exatrkx_pipeline``: FEATURES -> LABELS, the whole in-process pipeline."""

    inputs = ("FEATURES",)

    def setup(self) -> None:
        from exatrkx.models import Nets
        from exatrkx.pipeline import Pipeline, local_stages

        nets = Nets(*(self.load_net(name) for name in ("embed", "filter", "gnn")))
        self.pipeline = Pipeline(local_stages(nets, self.config, self.device), self.device)

    def run(self, *tensors: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        check_features(tensors[0], self.max_hits)
        labels = self.pipeline.run(tensors[0].cpu().numpy()).labels
        return [("LABELS", torch.from_numpy(labels))]
