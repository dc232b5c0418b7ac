"""The pipeline in one process (service option 0), with per-stage timing.

A :class:`Pipeline` calls five callables held in a :class:`Stages`; :func:`local_stages`
makes them from the stage functions and the nets. The other service options replace some
or all callables with remote ones (see :mod:`exatrkx.service.runner`); the pipeline itself never
looks at what a stage is, so every option runs the same code around the stages.

Threads: torch's intra-op threads are a process-wide setting. :class:`Pipeline` sets them
only when given ``num_threads`` (:func:`load_pipeline` passes 1 by default: for events of
a few thousand hits one thread is as fast as two and leaves the other core free).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from exatrkx.config import FrnnBackend, LabelMethod, PipelineConfig, SelectionConfig
from exatrkx.contract import NET_STAGES, STAGES, Stage
from exatrkx.core.features import check_features
from exatrkx.core.models import Nets, load_models, script_models
from exatrkx.core.stages.build import build_edges
from exatrkx.core.stages.embed import embed
from exatrkx.core.stages.filter import filter_edges
from exatrkx.core.stages.gnn import classify_edges
from exatrkx.core.stages.label import label_event
from exatrkx.core.stages.layerpairs import build_layer_pairs

Tensor = torch.Tensor


@dataclass
class Stages:
    """One callable per stage; all take and return torch tensors.

    Attributes:
        embed: ``features [N,3] f32 -> embedding [N,D] f32``.
        build: ``embedding -> edges [2,E] i64``.
        filter: ``(features, edges) -> kept edges [2,E'] i64``.
        gnn: ``(features, kept edges) -> scores [E'] f32``.
        label: ``(features, kept edges, scores) -> labels [N] i64`` (-1 = no track).
    """

    embed: Callable[[Tensor], Tensor]
    build: Callable[[Tensor], Tensor]
    filter: Callable[[Tensor, Tensor], Tensor]
    gnn: Callable[[Tensor, Tensor], Tensor]
    label: Callable[[Tensor, Tensor, Tensor], Tensor]


def _filter_kept(model: nn.Module, cut: float, features: Tensor, edges: Tensor) -> Tensor:
    return filter_edges(model, features, edges, cut)[0]


def _label(cut: float, method: LabelMethod, selection: SelectionConfig, features: Tensor,
           edges: Tensor, scores: Tensor) -> Tensor:
    return label_event(features, edges, scores, cut, method, selection)


def stage(name: Stage, config: PipelineConfig, net: nn.Module | None = None,
          frnn_backend: FrnnBackend = "auto") -> Callable[..., Tensor]:
    """One stage as a callable with the settings of ``config`` bound (see :class:`Stages`).

    The in-process pipeline and every served stage model get their stage from here.

    Args:
        name: one of :data:`exatrkx.contract.STAGES`.
        config: build method (radius and k, or the layer map), cuts and label method.
        net: the stage's net (embed, filter, gnn); None for build and label.
        frnn_backend: build backend (``auto``, ``kdtree`` or ``torch``).
    """
    if name in NET_STAGES:
        if net is None:
            raise ValueError(f"the {name} stage needs its net")
        return _net_stage(name, config, net)
    if name == "build":
        if config.build_method == "layer_pairs":
            return functools.partial(build_layer_pairs, layers=config.layers,
                                     max_neighbours=config.max_neighbours)
        return functools.partial(build_edges, radius=config.radius,
                                 max_neighbours=config.max_neighbours, backend=frnn_backend)
    if name == "label":
        return functools.partial(_label, config.gnn_cut, config.label_method,
                                 config.selection)
    raise ValueError(f"unknown stage {name!r} ({', '.join(STAGES)})")


def _net_stage(name: Stage, config: PipelineConfig, net: nn.Module) -> Callable[..., Tensor]:
    if name == "embed":
        return functools.partial(embed, net)
    if name == "filter":
        return functools.partial(_filter_kept, net, config.filter_cut)
    return functools.partial(classify_edges, net)


def local_stages(nets: Nets, config: PipelineConfig, device: torch.device | str = "cpu",
                 frnn_backend: FrnnBackend = "auto") -> Stages:
    """The five stages in this process, with the nets on ``device`` (moved in place)."""
    nets.to(device).eval()
    net = dict(nets.items())
    return Stages(**{name: stage(name, config, net.get(name), frnn_backend)
                     for name in STAGES})


@dataclass
class PipelineResult:
    """The outcome for one event.

    Attributes:
        labels: int64 ``[N]`` track of each hit, -1 = unassigned.
        times_ms: wall time of each stage (keys ``embed, build, filter, gnn, label``).
        graph: with ``run(..., keep_graph=True)``: numpy ``build_edges``, ``filter_edges``
            ([2, E] int64) and ``gnn_scores`` ([E'] float32) for edge metrics.
        edges: edges after each of ``build``, ``filter`` and ``gnn`` (the edges above the
            GNN cut, when the pipeline knows it).
    """

    labels: np.ndarray
    times_ms: dict[str, float]
    graph: dict[str, np.ndarray] = field(default_factory=dict)
    edges: dict[str, int] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return float(sum(self.times_ms.values()))


class Pipeline:
    """Runs the five stages on one event at a time.

    Args:
        stages: the callables (local or remote).
        device: where the input features are put before the first stage.
        num_threads: if given, ``torch.set_num_threads(num_threads)`` (process-wide).
        gnn_cut: the label stage's GNN cut, to count the edges above it (None: not counted).
    """

    def __init__(self, stages: Stages, device: torch.device | str = "cpu",
                 num_threads: int | None = None, gnn_cut: float | None = None) -> None:
        self.stages = stages
        self.device = torch.device(device)
        self.gnn_cut = gnn_cut
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self, features: np.ndarray, keep_graph: bool = False) -> PipelineResult:
        """Track labels for one event.

        Args:
            features: ``[N, 3]`` (r/1000, phi/pi, z/1000); checked first.
            keep_graph: also return the intermediate edges and GNN scores (numpy).

        Raises:
            InputError: wrong shape, non-numeric or non-finite features.
        """
        feats = check_features(features)
        n = feats.shape[0]
        times: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        graph: dict[str, np.ndarray] = {}
        if n < 2:
            if keep_graph:
                graph = {"build_edges": np.zeros((2, 0), np.int64),
                         "filter_edges": np.zeros((2, 0), np.int64),
                         "gnn_scores": np.zeros(0, np.float32)}
            return PipelineResult(np.full(n, -1, dtype=np.int64), times, graph,
                                  dict.fromkeys(("build", "filter", "gnn"), 0))
        st = self.stages
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(feats)).to(self.device)
            self._sync()
            t0 = time.perf_counter()
            emb = st.embed(x)
            self._sync()
            t1 = time.perf_counter()
            edges = st.build(emb)
            self._sync()
            t2 = time.perf_counter()
            kept = st.filter(x, edges)
            self._sync()
            t3 = time.perf_counter()
            scores = st.gnn(x, kept)
            self._sync()
            t4 = time.perf_counter()
            labels = st.label(x, kept, scores)
            labels_np = labels.cpu().numpy().astype(np.int64, copy=False)
            t5 = time.perf_counter()
        for name, a, b in zip(STAGES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5),
                              strict=True):
            times[name] = (b - a) * 1e3
        if keep_graph:
            graph = {"build_edges": edges.cpu().numpy(), "filter_edges": kept.cpu().numpy(),
                     "gnn_scores": scores.cpu().numpy()}
        counts = {"build": int(edges.shape[1]), "filter": int(kept.shape[1])}
        if self.gnn_cut is not None:
            counts["gnn"] = int((scores > self.gnn_cut).sum())
        return PipelineResult(labels_np, times, graph, counts)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Labels only: ``run(features).labels``."""
        return self.run(features).labels


def load_pipeline(weights_dir: str | Path | None = None, device: torch.device | str = "cpu",
                  scripted: bool = True, num_threads: int | None = 1,
                  frnn_backend: FrnnBackend = "auto") -> Pipeline:
    """The in-process pipeline (option 0) from a weights folder (default: shipped weights).

    Args:
        weights_dir: folder written by :func:`exatrkx.core.models.save_models`, or the name
            of a shipped set.
        device: ``"cpu"``, ``"cuda"``, ...
        scripted: run TorchScript versions of the nets (same outputs).
        num_threads: torch intra-op threads (process-wide; None leaves them alone).
        frnn_backend: build backend (``auto``, ``kdtree`` or ``torch``).
    """
    nets, config = load_models(weights_dir, device="cpu")
    return pipeline_from_nets(nets, config, device, scripted, num_threads, frnn_backend)


def pipeline_from_nets(nets: Nets, config: PipelineConfig, device: torch.device | str = "cpu",
                       scripted: bool = True, num_threads: int | None = 1,
                       frnn_backend: FrnnBackend = "auto") -> Pipeline:
    """Like :func:`load_pipeline` for nets already in memory (e.g. random-init ones)."""
    if scripted:
        nets = script_models(nets)
    return Pipeline(local_stages(nets, config, device, frnn_backend), device, num_threads,
                    config.gnn_cut)
