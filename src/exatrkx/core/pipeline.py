"""The pipeline in one process (service option 0), with per-stage timing.

A :class:`Pipeline` calls five callables held in a :class:`Stages`; :func:`local_stages`
makes them from the stage functions and the nets. The other service options replace some
or all callables with remote ones (see :mod:`exatrkx.service.runner`); the pipeline itself never
looks at what a stage is, so every option runs the same code around the stages.

Batches: a local stage (:class:`StageFn`) also runs several events at once as one disjoint
graph (:mod:`exatrkx.core.batch`); :meth:`Pipeline.run_batch` runs whole events that way
(the whole-pipeline model does, on the events Triton batches for it). An event gets the same
labels alone and in any batch.

Threads: torch's intra-op threads are a process-wide setting. :class:`Pipeline` sets them
only when given ``num_threads`` (:func:`load_pipeline` passes 1 by default: for events of
a few thousand hits one thread is as fast as two and leaves the other core free).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from exatrkx.config import (
    FrnnBackend,
    LabelMethod,
    LayerMapConfig,
    PipelineConfig,
    SelectionConfig,
)
from exatrkx.contract import NET_STAGES, STAGES, Stage
from exatrkx.core.features import check_features
from exatrkx.core.models import Nets, load_models, script_models
from exatrkx.core.stages.build import build_events
from exatrkx.core.stages.embed import embed_events
from exatrkx.core.stages.filter import filter_events
from exatrkx.core.stages.gnn import classify_events
from exatrkx.core.stages.label import label_events
from exatrkx.core.stages.layerpairs import build_layer_pairs

Tensor = torch.Tensor
#: Several events' inputs (one tuple of tensors per event, in the stage's order) -> one
#: output per event.
BatchFn = Callable[[Sequence[Sequence[Tensor]]], list[Tensor]]


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


class StageFn:
    """One local stage with its settings bound (see :class:`Stages`).

    ``fn(*tensors)`` runs one event; ``fn.batch(events)`` runs several (a list of per-event
    input tuples, one output each) as one disjoint graph: one forward pass of a net over all
    of them. An event alone is a batch of one, so both give the same result.
    """

    def __init__(self, name: Stage, batch: BatchFn) -> None:
        self.name = name
        self.batch = batch

    def __call__(self, *tensors: Tensor) -> Tensor:
        return self.batch([tensors])[0]

    def __repr__(self) -> str:
        return f"StageFn({self.name!r})"


def _column(events: Sequence[Sequence[Tensor]], i: int) -> list[Tensor]:
    return [e[i] for e in events]


def _embed(net: nn.Module, events: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    return embed_events(net, _column(events, 0))


def _build(radius: float, k: int, backend: FrnnBackend,
           events: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    return build_events(_column(events, 0), radius, k, backend)


def _build_layer_pairs(layers: LayerMapConfig, k: int,
                       events: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    return [build_layer_pairs(e, layers, k) for e in _column(events, 0)]


def _filter(net: nn.Module, cut: float, events: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    return [kept for kept, _ in filter_events(net, _column(events, 0), _column(events, 1), cut)]


def _gnn(net: nn.Module, events: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    return classify_events(net, _column(events, 0), _column(events, 1))


def _label(cut: float, method: LabelMethod, selection: SelectionConfig,
           events: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    return label_events(_column(events, 0), _column(events, 1), _column(events, 2), cut,
                        method, selection)


def stage(name: Stage, config: PipelineConfig, net: nn.Module | None = None,
          frnn_backend: FrnnBackend = "auto") -> StageFn:
    """One stage as a callable with the settings of ``config`` bound (see :class:`Stages`
    and :class:`StageFn`).

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
        return StageFn(name, _net_stage(name, config, net))
    if name == "build":
        if config.build_method == "layer_pairs":
            return StageFn(name, functools.partial(_build_layer_pairs, config.layers,
                                                   config.max_neighbours))
        return StageFn(name, functools.partial(_build, config.radius, config.max_neighbours,
                                               frnn_backend))
    if name == "label":
        return StageFn(name, functools.partial(_label, config.gnn_cut, config.label_method,
                                               config.selection))
    raise ValueError(f"unknown stage {name!r} ({', '.join(STAGES)})")


def _net_stage(name: Stage, config: PipelineConfig, net: nn.Module) -> BatchFn:
    if name == "embed":
        return functools.partial(_embed, net)
    if name == "filter":
        return functools.partial(_filter, net, config.filter_cut)
    return functools.partial(_gnn, net)


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

    def run_batch(self, features: Sequence[np.ndarray]) -> list[PipelineResult]:
        """Track labels of several events, run as one disjoint graph (same labels as
        :meth:`run` gives each of them). Needs local stages (:func:`local_stages`).

        ``times_ms`` of each result is the batch's time per stage divided by the events.

        Raises:
            InputError: an event has wrong-shaped, non-numeric or non-finite features.
        """
        xs = [torch.from_numpy(np.ascontiguousarray(check_features(f))).to(self.device)
              for f in features]
        t0 = time.perf_counter()
        labels = self.run_tensors(xs)
        share = (time.perf_counter() - t0) * 1e3 / max(len(xs), 1)
        return [PipelineResult(lab.cpu().numpy().astype(np.int64, copy=False),
                               {"pipeline": share}) for lab in labels]

    def run_tensors(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Labels of several events given as checked f32 ``[N, 3]`` tensors on the pipeline's
        device, run as one disjoint graph; labels i64 ``[N]`` on that device.

        Events with fewer than 2 hits have no edges and get -1 without going through the
        stages, as in :meth:`run`.

        Raises:
            TypeError: a stage is not local (no ``batch``).
        """
        fns = [getattr(self.stages, name) for name in STAGES]
        if not all(isinstance(fn, StageFn) for fn in fns):
            raise TypeError("run_batch needs local stages (exatrkx.core.pipeline.StageFn)")
        embed_fn, build_fn, filter_fn, gnn_fn, label_fn = fns
        out = [torch.full((int(x.shape[0]),), -1, dtype=torch.int64, device=x.device)
               for x in features]
        idx = [i for i, x in enumerate(features) if int(x.shape[0]) >= 2]
        if idx:
            with torch.inference_mode():
                xs = [features[i] for i in idx]
                emb = embed_fn.batch([(x,) for x in xs])
                edges = build_fn.batch([(e,) for e in emb])
                kept = filter_fn.batch(list(zip(xs, edges, strict=True)))
                scores = gnn_fn.batch(list(zip(xs, kept, strict=True)))
                labels = label_fn.batch(list(zip(xs, kept, scores, strict=True)))
            for i, lab in zip(idx, labels, strict=True):
                out[i] = lab
        return out


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
