"""Checks of the tensors a served model receives, before it does any work.

Plain functions on torch tensors (no Triton import), used by the Python-backend adapters
of :mod:`exatrkx.serve.adapters` and testable in-process. Every check raises
:class:`~exatrkx.errors.InputError` with a message that names the tensor and the problem;
the adapters turn it into a Triton error response (``INVALID_ARG``).

Order of the checks: dtype and shape first, then the size limits (``max_hits`` hits and at
most ``max_neighbours`` edges per hit, the bound the build stage guarantees), then values
(finite features, edge indices in range). So an oversized event is refused before the model
allocates anything for it, and the value scans run only on tensors of a bounded size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from exatrkx.contract import (
    EDGES,
    EMBED_DIM,
    EMBEDDING,
    FEATURES,
    MODELS,
    SCORES,
    TENSORS,
    TensorSpec,
)
from exatrkx.errors import InputError

#: Models whose inputs are checked here (every model that runs our code).
CHECKED_KINDS = ("stage", "pipeline")
_TORCH_TYPES = {"FP32": torch.float32, "INT64": torch.int64}
_TRITON_TYPES = {v: k for k, v in _TORCH_TYPES.items()}


def _shape(spec: TensorSpec, embed_dim: int | None) -> tuple[int | None, ...]:
    return tuple(embed_dim if d == EMBED_DIM else d for d in spec.shape)


def _dtype(tensor: str) -> torch.dtype:
    return _TORCH_TYPES[TENSORS[tensor].dtype]


def as_tensor(name: str, value: Any) -> torch.Tensor:
    """A torch tensor from a tensor or a numpy array; anything else is refused.

    Raises:
        InputError: ``value`` is neither, or a numpy dtype torch cannot hold.
    """
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        try:
            return torch.from_numpy(value)
        except TypeError:
            raise InputError(f"{name} has an unsupported data type {value.dtype}") from None
    raise InputError(f"{name} must be a tensor, got {type(value).__name__}")


def check_tensor(name: str, tensor: torch.Tensor, dtype: torch.dtype,
                 shape: Sequence[int | None]) -> None:
    """``tensor`` has ``dtype`` and ``shape`` (``-1``/``None``: any size there).

    Raises:
        InputError: wrong dtype, rank or fixed dimension.
    """
    if tensor.dtype != dtype:
        want = _TRITON_TYPES.get(dtype, str(dtype))
        raise InputError(f"{name} has data type {tensor.dtype}, expected {want}")
    got = tuple(int(s) for s in tensor.shape)
    want_shape = "[" + ", ".join("N" if s is None or s < 0 else str(s) for s in shape) + "]"
    if len(got) != len(shape):
        raise InputError(f"{name} has shape {list(got)} (rank {len(got)}), "
                         f"expected {want_shape}")
    for size, expected in zip(got, shape, strict=True):
        if expected is not None and expected >= 0 and size != expected:
            raise InputError(f"{name} has shape {list(got)}, expected {want_shape}")


def _first_non_finite_row(tensor: torch.Tensor) -> int | None:
    # one reduction on the fast path: a NaN or an infinity makes the sum non-finite;
    # a sum can also overflow to infinity on finite values, hence the exact scan after it
    if math.isfinite(float(tensor.sum())):
        return None
    bad = ~torch.isfinite(tensor.reshape(tensor.shape[0], -1)).all(dim=1)
    if not bool(bad.any()):
        return None
    return int(torch.nonzero(bad)[0, 0])


def check_features(features: torch.Tensor, max_hits: int, name: str = FEATURES) -> None:
    """Features of one event: f32 ``[N, 3]``, ``1 <= N <= max_hits``, all finite.

    Raises:
        InputError: empty, oversized, wrong dtype/shape or non-finite features.
    """
    check_tensor(name, features, _dtype(FEATURES), TENSORS[FEATURES].shape)
    n = int(features.shape[0])
    if n == 0:
        raise InputError(f"{name} is empty (an event needs at least one hit)")
    if n > max_hits:
        raise InputError(f"event has {n} hits, more than this server's limit of {max_hits}")
    row = _first_non_finite_row(features)
    if row is not None:
        raise InputError(f"{name} has a non-finite (NaN or infinite) value in row {row}")


def check_embedding(embedding: torch.Tensor, max_hits: int, width: int | None = None) -> None:
    """Embedding of one event: f32 ``[N, width]``, ``N <= max_hits``, all finite.

    Raises:
        InputError: oversized, wrong dtype/shape or non-finite embedding.
    """
    check_tensor(EMBEDDING, embedding, _dtype(EMBEDDING), _shape(TENSORS[EMBEDDING], width))
    n = int(embedding.shape[0])
    if n > max_hits:
        raise InputError(f"{EMBEDDING} has {n} rows, more than this server's limit of "
                         f"{max_hits}")
    if int(embedding.shape[1]) == 0:
        raise InputError(f"{EMBEDDING} has no columns")
    row = _first_non_finite_row(embedding)
    if row is not None:
        raise InputError(f"{EMBEDDING} has a non-finite (NaN or infinite) value in row {row}")


def check_edges(edges: torch.Tensor, num_hits: int, name: str = EDGES,
                max_neighbours: int | None = None) -> None:
    """Edges of one event: i64 ``[2, E]`` indexing hits ``0..num_hits-1``.

    With ``max_neighbours``, at most that many edges per hit (the build stage's bound).

    Raises:
        InputError: wrong dtype/shape, too many edges, an index out of range.
    """
    check_tensor(name, edges, _dtype(EDGES), TENSORS[EDGES].shape)
    count = int(edges.shape[1])
    if max_neighbours is not None and count > num_hits * max_neighbours:
        raise InputError(f"{name} has {count} edges, more than {max_neighbours} per hit "
                         f"({num_hits} hits)")
    if count:
        low, high = torch.aminmax(edges)
        if int(low) < 0 or int(high) >= num_hits:
            raise InputError(f"{name} refers to hits outside 0..{num_hits - 1}")


def check_scores(scores: torch.Tensor, num_edges: int) -> None:
    """Edge scores: f32 ``[E]``, one per edge, no NaN.

    Raises:
        InputError: wrong dtype/shape, count not matching the edges, a NaN.
    """
    check_tensor(SCORES, scores, _dtype(SCORES), TENSORS[SCORES].shape)
    if int(scores.shape[0]) != num_edges:
        raise InputError(f"{SCORES} has {int(scores.shape[0])} values for {num_edges} edges")
    # one reduction on the fast path (a NaN makes the sum NaN; 10x cheaper than isnan().any())
    if num_edges and math.isnan(float(scores.sum())) and bool(torch.isnan(scores).any()):
        raise InputError(f"{SCORES} has a NaN value")


def validate_inputs(model: str, tensors: Sequence[Any], max_hits: int,
                    max_neighbours: int | None = None, embed_dim: int | None = None) -> None:
    """Check one request's inputs to ``model`` (tensors in the contract's order).

    Args:
        model: a model of :data:`exatrkx.contract.MODELS` that runs our code (the
            ensemble's input is checked by its first step).
        tensors: the request's inputs (torch tensors or numpy arrays).
        max_hits: the server's limit on hits per event.
        max_neighbours: bound of edges per hit (None: no bound).
        embed_dim: embedding width the build model expects (None: any).

    Raises:
        InputError: the first problem found.
    """
    spec = MODELS.get(model)
    if spec is None or spec.kind not in CHECKED_KINDS:
        raise InputError(f"no input checks for model {model!r}")
    names = spec.inputs
    if len(tensors) != len(names):
        raise InputError(f"{model} takes {len(names)} inputs "
                         f"({', '.join(names)}), got {len(tensors)}")
    inputs = [as_tensor(name, value) for name, value in zip(names, tensors, strict=True)]
    if names[0] == EMBEDDING:
        check_embedding(inputs[0], max_hits, embed_dim)
        return
    features = inputs[0]
    check_features(features, max_hits)
    n = int(features.shape[0])
    if len(inputs) > 1:
        check_edges(inputs[1], n, names[1], max_neighbours)
    if len(inputs) > 2:
        check_scores(inputs[2], int(inputs[1].shape[1]))
