"""Stages (or whole events) run by Triton models, as callables the pipeline can hold."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch

from exatrkx.contract import FEATURES, FLOOR_MODELS, MODELS, SIZES, STAGE_MODELS, Stage
from exatrkx.core.pipeline import Stages
from exatrkx.service.transport import Transport


class RemoteStage:
    """A pipeline stage (or a whole event) run by a Triton model.

    Called with the model's input tensors (torch or numpy, in the contract's order, like the
    local stage callables of :class:`exatrkx.core.pipeline.Stages`); returns the output as a
    CPU torch tensor.
    """

    def __init__(self, transport: Transport, model: str) -> None:
        self.transport = transport
        self.model = model
        spec = MODELS[model]
        self.inputs, self.output = spec.inputs, spec.output

    def __call__(self, *tensors: torch.Tensor | np.ndarray) -> torch.Tensor:
        arrays = {name: as_numpy(t) for name, t in zip(self.inputs, tensors, strict=True)}
        num_hits = int(arrays[self.inputs[0]].shape[0])  # FEATURES or EMBEDDING: [N, ...]
        out = self.transport.infer(self.model, arrays, (self.output,), num_hits)
        return torch.from_numpy(out[self.output])


def as_numpy(tensor: torch.Tensor | np.ndarray) -> np.ndarray:
    """A numpy view (CPU) of a tensor or array."""
    if isinstance(tensor, np.ndarray):
        return tensor
    return tensor.detach().cpu().numpy()


def remote_stages(stages: Stages, transport: Transport, names: Sequence[Stage]) -> Stages:
    """A copy of ``stages`` with the stages ``names`` served by their Triton models."""
    return dataclasses.replace(stages, **{name: RemoteStage(transport, STAGE_MODELS[name].name)
                                          for name in names})


def floor_times(transport: Transport, features: np.ndarray,
                sizes: np.ndarray | None = None,
                keys: Sequence[str] | None = None) -> dict[str, float]:
    """Client-side ms of one call to each floor model with this payload.

    Args:
        transport: the connection.
        features: the event.
        sizes: the event's ``SIZES`` (:func:`exatrkx.contract.touch_sizes`) for the touch
            floors; None: the touch floors are skipped.
        keys: the floors to time (keys of :data:`exatrkx.contract.FLOOR_MODELS`; default:
            every one that ``sizes`` allows).

    Returns:
        ``{"hop": ms, "ensemble5": ms, "touch_hop": ms, "touch_ensemble5": ms}`` (those timed).
    """
    out = {}
    for key in keys if keys is not None else FLOOR_MODELS:
        model = FLOOR_MODELS[key]
        inputs = {FEATURES: features}
        if SIZES in MODELS[model].inputs:
            if sizes is None:
                continue
            inputs[SIZES] = sizes
        t0 = time.perf_counter()
        transport.infer(model, inputs, MODELS[model].outputs,
                        num_hits=int(features.shape[0]))
        out[key] = (time.perf_counter() - t0) * 1e3
    return out
