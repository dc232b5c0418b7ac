"""Triton Python-backend adapters of the floor models: Triton's own cost, beside the options.

- ``identity`` (and the five-step ``identity_ensemble5`` of it): returns its input; never
  reads it.
- ``touch`` (one hop, FEATURES -> LABELS like the whole-pipeline model) and the
  ``touch_<stage>`` steps of ``touch_ensemble5`` (the stage models' tensors): read every
  element of their inputs and write outputs of the real stages' sizes (``SIZES``: the
  event's embedding width and edge counts; the other sizes follow from the inputs).

Both take one event per request with the contract's leading event dimension and answer each
request of an execution, as the stage models do. numpy only: these stubs start without
torch, and their cost is Triton's and the Python backend's, not ours.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from exatrkx.contract import (
    CONFIG_PARAMETER,
    DEFAULT_MAX_HITS,
    EDGES,
    EDGES_KEPT,
    EMBEDDING,
    IDENTITY_MODEL,
    MODELS,
    SCORES,
    SIZES,
    TENSORS,
    TOUCH_MODEL,
    TOUCH_SIZE_INDEX,
    off_wire,
)
from exatrkx.core.allocator import tune_allocator
from exatrkx.errors import InputError

#: Embedding width a ``SIZES`` may ask for at most.
MAX_WIDTH = 1024


def _error(exc: Exception) -> Any:
    code = getattr(pb_utils.TritonError, "INVALID_ARG" if isinstance(exc, InputError)
                   else "INTERNAL", None)
    message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
    error = (pb_utils.TritonError(message) if code is None
             else pb_utils.TritonError(message, code))
    return pb_utils.InferenceResponse(error=error)


def check_sizes(sizes: np.ndarray, max_edges: int) -> None:
    """``SIZES``: int64 ``[3]``: a width up to :data:`MAX_WIDTH`, edge counts up to
    ``max_edges``.

    Raises:
        InputError: wrong dtype or shape, a negative or too large size.
    """
    if sizes.dtype != np.int64 or sizes.shape != (3,):
        raise InputError(f"{SIZES} must be INT64 [3], got {sizes.dtype} {list(sizes.shape)}")
    for value, limit, what in zip(sizes.tolist(), (MAX_WIDTH, max_edges, max_edges),
                                  ("width", "edges", "kept edges"), strict=True):
        if not 0 <= value <= limit:
            raise InputError(f"{SIZES} asks for {value} {what}, allowed 0..{limit}")


class _Floor:
    """Common part: the model's tensors and the request loop (each request on its own).

    The tensors are those of the model of this name in the contract; a copy under another
    name (perf_analyzer's pinned copies) has those of :attr:`default_model`.
    """

    default_model = IDENTITY_MODEL

    def initialize(self, args: dict[str, Any]) -> None:
        tune_allocator()  # as every model that runs stages
        self.model = str(args["model_name"])
        self.spec = MODELS.get(self.model, MODELS[self.default_model])
        params = json.loads(args["model_config"]).get("parameters", {})
        settings = json.loads(params.get(CONFIG_PARAMETER, {}).get("string_value", "{}"))
        k = int(settings.get("pipeline", {}).get("max_neighbours", 64))
        self.max_edges = int(settings.get("max_hits", DEFAULT_MAX_HITS)) * k

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                inputs = [off_wire(name, pb_utils.get_input_tensor_by_name(request, name)
                                   .as_numpy()) for name in self.spec.inputs]
                outputs = self.run(inputs)
            except Exception as exc:  # the stub stays up; the client gets the reason
                responses.append(_error(exc if not isinstance(exc, ValueError)
                                        else InputError(str(exc))))
                continue
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(name, array[None]) for name, array in outputs]))
        return responses

    def run(self, inputs: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
        raise NotImplementedError


class IdentityModel(_Floor):
    """``identity``: FEATURES -> OUTPUT, the input handed back unread."""

    def run(self, inputs: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
        return [(self.spec.outputs[0], inputs[0])]


class TouchModel(_Floor):
    """``touch`` and ``touch_<stage>``: every input element read, outputs of the real sizes
    written."""

    default_model = TOUCH_MODEL

    def run(self, inputs: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
        named = dict(zip(self.spec.inputs, inputs, strict=True))
        sizes = named.get(SIZES)
        if sizes is not None:
            check_sizes(sizes, self.max_edges)
        total = sum(float(a.sum()) for a in inputs)  # every element read
        hits = int(inputs[0].shape[0])
        out = []
        for name in self.spec.outputs:
            dtype = TENSORS[name].numpy_dtype
            size = int(sizes[TOUCH_SIZE_INDEX[name]]) if sizes is not None and \
                name in TOUCH_SIZE_INDEX else 0
            if name == EMBEDDING:
                value = np.full((hits, size), total, dtype=dtype)
            elif name in (EDGES, EDGES_KEPT):
                value = np.remainder(np.arange(2 * size, dtype=np.int64),
                                     max(hits, 1)).reshape(2, size)
            elif name == SCORES:
                value = np.full(int(named[EDGES_KEPT].shape[1]), 0.5, dtype=dtype)
            else:  # LABELS
                value = np.full(hits, -1, dtype=dtype)
            out.append((name, value))
        return out
