"""The pipeline in one process (service option 0), with per-stage timing.

A :class:`Pipeline` calls five callables held in a :class:`Stages`; :func:`local_stages`
makes them from the stage functions and the nets. The other service options replace some
or all callables with remote ones (see ``exatrkx.client``); the pipeline itself never
looks at what a stage is, so every option runs the same code around the stages.

Threads: torch's intra-op threads are a process-wide setting. :class:`Pipeline` sets them
only when given ``num_threads`` (:func:`load_pipeline` passes 1 by default: for events of
a few thousand hits one thread is as fast as two and leaves the other core free).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from exatrkx.config import PipelineConfig, SelectionConfig
from exatrkx.errors import InputError
from exatrkx.io import check_features
from exatrkx.models import Nets, load_models, script_models
from exatrkx.stages.build import build_edges
from exatrkx.stages.embed import embed
from exatrkx.stages.filter import filter_edges
from exatrkx.stages.gnn import classify_edges
from exatrkx.stages.label import label_event

STAGE_NAMES = ("embed", "build", "filter", "gnn", "label")
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


def _label(cut: float, method: str, selection: SelectionConfig, features: Tensor,
           edges: Tensor, scores: Tensor) -> Tensor:
    return label_event(features, edges, scores, cut, method, selection)


def stage(name: str, config: PipelineConfig, net: nn.Module | None = None,
          frnn_backend: str = "auto") -> Callable[..., Tensor]:
    """One stage as a callable with the settings of ``config`` bound (see :class:`Stages`).

    The in-process pipeline and every served stage model get their stage from here.

    Args:
        name: one of :data:`STAGE_NAMES`.
        config: radius, k, cuts and label method.
        net: the stage's net (embed, filter, gnn); None for build and label.
        frnn_backend: build backend (``auto``, ``kdtree`` or ``torch``).
    """
    if name in ("embed", "filter", "gnn") and net is None:
        raise ValueError(f"the {name} stage needs its net")
    if name == "embed":
        return functools.partial(embed, net)
    if name == "build":
        return functools.partial(build_edges, radius=config.radius,
                                 max_neighbours=config.max_neighbours, backend=frnn_backend)
    if name == "filter":
        return functools.partial(_filter_kept, net, config.filter_cut)
    if name == "gnn":
        return functools.partial(classify_edges, net)
    if name == "label":
        return functools.partial(_label, config.gnn_cut, config.label_method,
                                 config.selection)
    raise ValueError(f"unknown stage {name!r} ({', '.join(STAGE_NAMES)})")


def local_stages(nets: Nets, config: PipelineConfig, device: torch.device | str = "cpu",
                 frnn_backend: str = "auto") -> Stages:
    """The five stages in this process, with the nets on ``device`` (moved in place)."""
    nets.to(device).eval()
    net = dict(nets.items())
    return Stages(**{name: stage(name, config, net.get(name), frnn_backend)
                     for name in STAGE_NAMES})


@dataclass
class PipelineResult:
    """The outcome for one event.

    Attributes:
        labels: int64 ``[N]`` track of each hit, -1 = unassigned.
        times_ms: wall time of each stage (keys ``embed, build, filter, gnn, label``).
        edges_build: number of edges after the build stage.
        edges_filter: number of edges the filter kept.
        graph: with ``run(..., keep_graph=True)``: numpy ``build_edges``, ``filter_edges``
            ([2, E] int64) and ``gnn_scores`` ([E'] float32) for edge metrics.
    """

    labels: np.ndarray
    times_ms: dict[str, float]
    edges_build: int = 0
    edges_filter: int = 0
    graph: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return float(sum(self.times_ms.values()))


class Pipeline:
    """Runs the five stages on one event at a time.

    Args:
        stages: the callables (local or remote).
        device: where the input features are put before the first stage.
        num_threads: if given, ``torch.set_num_threads(num_threads)`` (process-wide).
    """

    def __init__(self, stages: Stages, device: torch.device | str = "cpu",
                 num_threads: int | None = None) -> None:
        self.stages = stages
        self.device = torch.device(device)
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
        times = dict.fromkeys(STAGE_NAMES, 0.0)
        if n < 2:
            graph = {}
            if keep_graph:
                graph = {"build_edges": np.zeros((2, 0), np.int64),
                         "filter_edges": np.zeros((2, 0), np.int64),
                         "gnn_scores": np.zeros(0, np.float32)}
            return PipelineResult(np.full(n, -1, dtype=np.int64), times, graph=graph)
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
        for name, a, b in zip(STAGE_NAMES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5),
                              strict=True):
            times[name] = (b - a) * 1e3
        graph = {}
        if keep_graph:
            graph = {"build_edges": edges.cpu().numpy(), "filter_edges": kept.cpu().numpy(),
                     "gnn_scores": scores.cpu().numpy()}
        return PipelineResult(labels_np, times, int(edges.shape[1]), int(kept.shape[1]), graph)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Labels only: ``run(features).labels``."""
        return self.run(features).labels


def load_pipeline(weights_dir: str | Path | None = None, device: torch.device | str = "cpu",
                  scripted: bool = True, num_threads: int | None = 1,
                  frnn_backend: str = "auto") -> Pipeline:
    """The in-process pipeline (option 0) from a weights folder (default: shipped weights).

    Args:
        weights_dir: folder written by :func:`exatrkx.models.save_models`.
        device: ``"cpu"``, ``"cuda"``, ...
        scripted: run TorchScript versions of the nets (same outputs).
        num_threads: torch intra-op threads (process-wide; None leaves them alone).
        frnn_backend: build backend (``auto``, ``kdtree`` or ``torch``).
    """
    nets, config = load_models(weights_dir, device="cpu")
    return pipeline_from_nets(nets, config, device, scripted, num_threads, frnn_backend)


def pipeline_from_nets(nets: Nets, config: PipelineConfig, device: torch.device | str = "cpu",
                       scripted: bool = True, num_threads: int | None = 1,
                       frnn_backend: str = "auto") -> Pipeline:
    """Like :func:`load_pipeline` for nets already in memory (e.g. random-init ones)."""
    if scripted:
        nets = script_models(nets)
    return Pipeline(local_stages(nets, config, device, frnn_backend), device, num_threads)


# --------------------------------------------------------------------------- reconstruct


@dataclass
class ReconstructReport:
    """What :func:`reconstruct_events` did.

    Attributes:
        summary: the JSON-ready summary (``events``, ``failed``, ``option``,
            ``ms_per_event``, ``stages_ms``, metric keys -- None when not evaluated).
        errors: one message per event that failed (naming its file).
        lines: human-readable lines (one per event, then the summary).
    """

    summary: dict[str, Any]
    errors: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


METRIC_KEYS = ("track_efficiency", "fake_rate", "duplicate_rate", "edge_efficiency",
               "edge_purity", "track_efficiency_displaced", "fake_rate_majority",
               "trackml_score")


def _jsonable(value: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _runner(option: int, url: str | None, weights_dir: Path | None, device: str,
            num_threads: int | None, client: dict[str, Any] | None = None
            ) -> tuple[Callable[[np.ndarray, bool], tuple[
                np.ndarray, dict[str, float], dict[str, np.ndarray]]], float]:
    """A function ``(features, keep_graph) -> (labels, stages_ms, graph)`` and the GNN cut."""
    if option == 0:
        nets, config = load_models(weights_dir, device="cpu")
        pipe = pipeline_from_nets(nets, config, device, True, num_threads)

        def run0(features: np.ndarray, keep_graph: bool
                 ) -> tuple[np.ndarray, dict[str, float], dict[str, np.ndarray]]:
            res = pipe.run(features, keep_graph=keep_graph)
            return res.labels, res.times_ms, res.graph

        return run0, config.gnn_cut
    try:
        from exatrkx.client import make_runner
    except ImportError:
        raise InputError(f"option {option} needs the Triton client") from None
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    runner = make_runner(option, url, weights_dir=weights_dir, device=device, **(client or {}))

    def run_remote(features: np.ndarray, keep_graph: bool
                   ) -> tuple[np.ndarray, dict[str, float], dict[str, np.ndarray]]:
        labels, timing = runner.run(features)
        return labels, dict(timing.stages_ms), {}

    return run_remote, float("nan")


def reconstruct_events(events: str | Path, option: int = 0, url: str | None = None,
                       out: str | Path | None = None, evaluate: bool = False,
                       plots: str | Path | None = None, weights_dir: str | Path | None = None,
                       device: str = "cpu", num_threads: int | None = 1,
                       on_line: Callable[[str], None] | None = None, *,
                       resume: bool = False, timeout_s: float | None = None,
                       retries: int | None = None) -> ReconstructReport:
    """Reconstruct every event under ``events``; optionally write tracks and evaluate.

    A bad event (unreadable file, bad values, no truth with ``evaluate``) is reported in
    ``errors`` and skipped; the others are processed. When the server becomes unreachable
    (after the client's retries), the remaining events are not attempted: the summary's
    ``unprocessed`` lists every event without tracks, and a later run with ``resume`` does
    only those (tracks files are written atomically, so one that exists is complete).

    Args:
        events: directory, file or TrackML prefix (see :func:`exatrkx.io.event_sources`).
        option: service option (0 = in process; others need ``exatrkx.client``).
        url: Triton ``host:port`` for options 1-5.
        out: write ``<event>-tracks.csv`` here.
        evaluate: compute the physics metrics (needs truth).
        plots: write efficiency plots here (implies ``evaluate``).
        weights_dir: weights folder (default: the shipped weights).
        device: torch device of the local stages.
        num_threads: torch intra-op threads (None: leave as is).
        on_line: called with each human-readable line as it is produced.
        resume: skip events whose ``<event>-tracks.csv`` exists in ``out``.
        timeout_s: client timeout of one request (options 1-5; None: the client default).
        retries: resends of a request after a transient failure (None: client default).

    Raises:
        InputError: no events found, or the weights/server cannot be used.
    """
    from exatrkx.client import RemoteError
    from exatrkx.io import event_sources, read_event, tracks_path, write_tracks
    from exatrkx.metrics import evaluate_event, plot_efficiency, stage_edges, summarize

    if option not in range(6):
        raise InputError(f"service option must be one of 0-5, got {option}")
    evaluate = evaluate or plots is not None
    if resume and out is None:
        raise InputError("--resume needs --out (the folder of the tracks already written)")
    if resume and evaluate:
        raise InputError("--resume cannot be combined with --evaluate (metrics need every "
                         "event)")
    sources = event_sources(events)
    skipped = 0
    if resume:
        assert out is not None
        todo = [s for s in sources if not tracks_path(out, s).exists()]
        skipped = len(sources) - len(todo)
        sources = todo
    client = {"timeout_s": timeout_s, "retries": retries}
    run, gnn_cut = _runner(option, url, None if weights_dir is None else Path(weights_dir),
                           device, num_threads,
                           {k: v for k, v in client.items() if v is not None})
    # warm-up (TorchScript optimises on its first calls) on a synthetic event
    rng = np.random.default_rng(0)
    run(np.stack([rng.uniform(0.03, 1, 300), rng.uniform(-1, 1, 300),
                  rng.uniform(-1, 1, 300)], axis=1).astype(np.float32), False)

    report = ReconstructReport(summary={})
    emit = on_line or (lambda _line: None)
    per_event = []
    stage_sums: dict[str, float] = {}
    times = []
    unprocessed: list[str] = []
    for i, source in enumerate(sources):
        try:
            ev = read_event(source)
            if evaluate and not ev.has_truth:
                raise InputError("--evaluate needs truth (TrackML particles and truth files); "
                                 "this event has none", source)
            t0 = time.perf_counter()
            labels, stages_ms, graph = run(ev.features, evaluate and option == 0)
            times.append((time.perf_counter() - t0) * 1e3)
            if out is not None:
                try:
                    write_tracks(ev, labels, out)
                except OSError as exc:
                    raise InputError(f"cannot write tracks ({exc.strerror or exc})",
                                     out) from None
            if evaluate:
                edges = stage_edges(graph, gnn_cut) if graph else None
                per_event.append(evaluate_event(ev, labels, edges))
        except InputError as exc:
            msg = str(exc)
            if str(source) not in msg:
                msg = f"{source}: {msg}"
            report.errors.append(msg)
            unprocessed.append(str(source))
            if isinstance(exc, RemoteError) and exc.unreachable:
                # the server is gone (the client retried): do not try the others
                rest = [str(s) for s in sources[i + 1:]]
                unprocessed += rest
                if rest:
                    report.errors.append(f"{len(rest)} more events not attempted: the server "
                                         "is unreachable (rerun with --resume)")
                break
            continue
        for name, ms in stages_ms.items():
            stage_sums[name] = stage_sums.get(name, 0.0) + ms
        n_tracks = int(np.unique(labels[labels >= 0]).size)
        line = (f"{ev.name}: {ev.num_hits} hits, {n_tracks} tracks, {times[-1]:.1f} ms")
        report.lines.append(line)
        emit(line)
    n = len(times)
    summary: dict[str, Any] = {"events": n, "failed": len(unprocessed), "option": option,
                               "skipped": skipped, "unprocessed": unprocessed,
                               "ms_per_event": float(np.mean(times)) if n else None,
                               "ms_per_event_median": float(np.median(times)) if n else None,
                               "stages_ms": {k: v / n for k, v in stage_sums.items()}}
    summary.update(dict.fromkeys(METRIC_KEYS))
    if evaluate and per_event:
        metrics = summarize(per_event)
        summary.update({k: metrics[k] for k in METRIC_KEYS})
        summary["edges"] = metrics["edges"]
        summary["counts"] = metrics["counts"]
        if plots is not None:
            summary["plots"] = [str(p) for p in plot_efficiency(metrics, plots)]
    report.summary = _jsonable(summary)
    tail = [f"{n} events, {len(unprocessed)} failed"
            + (f", {skipped} skipped (tracks exist)" if skipped else "")
            + (f", {summary['ms_per_event']:.2f} ms/event (mean)" if n else "")]
    if evaluate and per_event:
        tail.append("  ".join(f"{k}={_fmt(summary[k])}" for k in METRIC_KEYS))
    for line in tail:
        report.lines.append(line)
        emit(line)
    return report


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.4f}"
