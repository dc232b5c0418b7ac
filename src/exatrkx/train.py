"""Training of the three nets on simulated events, and the choice of radius and cuts.

The recipe, stage by stage (each trained on the output of the one before):

1. **embed**: metric learning. Positive pairs are consecutive hits of one particle (the
   truth graph, :func:`exatrkx.physics.truth.truth_graph`); negatives are random pairs plus
   the hard negatives the current embedding puts within the margin. Hinge loss
   ``d_pos**2 + relu(margin - d_neg)**2``. The build radius is then set so that the
   build keeps ``target_build_efficiency`` of the truth pairs of the validation events.
2. **filter**: binary cross-entropy on the build's edges, class-balanced with
   ``pos_weight = #false / #true``; an edge is true when both hits belong to the same
   particle (noise never) and, with ``edge_pt > 0``, that particle has pT above it (slower
   particles' pairs are then taught as false). The shipped weights learn every particle's
   pairs: teaching loopers as false cost efficiency on tracks above 1 GeV (merged and split
   tracks), and the label stage's track selection removes looper pieces instead. The cut
   keeps ``target_filter_efficiency`` of the truth pairs.
3. **gnn**: the same loss and truth on the filtered graphs. The label method and the GNN
   cut are scanned on the validation events for the best track efficiency less the fake
   and duplicate rates.

Every event is also used phi-rotated by a random angle (the detector is symmetric in phi).
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from exatrkx.config import LABEL_METHODS, LabelMethod, PipelineConfig
from exatrkx.core.models import Nets, build_models, save_models
from exatrkx.core.pipeline import pipeline_from_nets
from exatrkx.core.stages.build import build_edges
from exatrkx.core.stages.filter import filter_edges
from exatrkx.core.stages.label import label_event
from exatrkx.errors import InputError
from exatrkx.io import Event, iter_events
from exatrkx.physics.metrics import evaluate_event, stage_edges, summarize
from exatrkx.physics.truth import hit_pt, truth_graph
from exatrkx.sim.simulate import simulate_events


@dataclass(frozen=True)
class TrainConfig:
    """How the shipped weights are made (``exatrkx train``; ``--quick`` for a smoke model).

    Attributes:
        train_events: simulated events to train on (when no ``--data`` is given).
        val_events: further events for choosing radius and cuts and for the metrics.
        seed: simulation seed of the training events (evaluation uses other seeds).
        pileup: mean minimum-bias interactions overlaid on the training events.
        embed_epochs, filter_epochs, gnn_epochs: passes over the training events.
        lr: Adam learning rate (cosine-decayed to 5% over each stage's epochs).
        margin: hinge margin of the embedding loss (chord distance, embeddings are unit).
        random_negatives: random negative pairs per hit in the embedding loss.
        hard_negatives: at most this many hard negative pairs per hit (the nearest ones the
            embedding has within the margin) in the embedding loss.
        embed_pt: positive pairs of the embedding loss come from particles above this pT
            (GeV): low-pT loopers do not pull the metric out of shape.
        edge_pt: the filter and the GNN learn the edges of particles above this pT (GeV) as
            true and those of slower particles as false (0 = every particle's edges true).
        signal_weight: weight in the filter and GNN losses of the true edges of particles
            above ``signal_pt`` (the ones the efficiency counts), relative to other edges.
        signal_pt: the radius and the filter cut are set on the truth pairs of particles
            above this pT (GeV), the ones the efficiency is judged on.
        target_build_efficiency: fraction of truth pairs the build radius must keep.
        target_filter_efficiency: fraction of truth pairs the filter cut must keep.
        threads: torch threads while training.
    """

    train_events: int = 200
    val_events: int = 20
    seed: int = 910_000
    pileup: float = 0.0
    embed_epochs: int = 12
    filter_epochs: int = 16
    gnn_epochs: int = 60
    lr: float = 3e-3
    margin: float = 0.1
    random_negatives: int = 4
    hard_negatives: int = 8
    embed_pt: float = 0.5
    edge_pt: float = 0.0
    signal_weight: float = 4.0
    signal_pt: float = 1.0
    target_build_efficiency: float = 0.997
    target_filter_efficiency: float = 0.995
    threads: int = 2

    @classmethod
    def quick(cls) -> TrainConfig:
        """A smoke model in about a minute (tests, CI): few events, few epochs."""
        return cls(train_events=12, val_events=4, embed_epochs=3, filter_epochs=2,
                   gnn_epochs=2)


@dataclass
class Sample:
    """One training event as tensors.

    Attributes:
        features: f32 ``[N, 3]``.
        pid: i64 ``[N]`` particle of each hit, 0 = noise.
        truth: i64 ``[2, P]`` the truth graph (:func:`exatrkx.physics.truth.truth_graph`).
        pair_pt: f32 ``[P]`` transverse momentum (GeV) of each pair's particle.
        hit_pt: f32 ``[N]`` transverse momentum (GeV) of each hit's particle, 0 for noise.
        signal: bool ``[P]``: the pair's particle has pT above the signal threshold.
        event: the event it came from.
    """

    features: torch.Tensor
    pid: torch.Tensor
    truth: torch.Tensor
    pair_pt: torch.Tensor
    hit_pt: torch.Tensor
    signal: torch.Tensor
    event: Event


def same_particle(pid: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """bool ``[E]``: both ends belong to the same (non-noise) particle."""
    a, b = pid[edges[0]], pid[edges[1]]
    return (a == b) & (a != 0)


def to_sample(event: Event, signal_pt: float = 1.0) -> Sample:
    """An event with truth -> a :class:`Sample` (signal: particles above ``signal_pt``)."""
    pid = event.particle_id
    if pid is None:
        raise InputError(f"event {event.name} has no truth; training needs truth")
    pairs = truth_graph(pid, event.hit_id)
    pt = torch.from_numpy(hit_pt(event).astype(np.float32))
    pair_pt = pt[torch.from_numpy(pairs[0])]
    return Sample(torch.from_numpy(event.features.copy()), torch.from_numpy(pid.copy()),
                  torch.from_numpy(pairs), pair_pt, pt, pair_pt > signal_pt, event)


def rotate_phi(features: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The event turned by a random angle about the beam axis (phi/pi wrapped to [-1, 1))."""
    shift = float(torch.rand((), generator=generator)) * 2.0
    out = features.clone()
    out[:, 1] = torch.remainder(out[:, 1] + 1.0 + shift, 2.0) - 1.0
    return out


def _cosine_lr(opt: torch.optim.Optimizer, base: float, epoch: int, epochs: int) -> None:
    lr = base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1))))
    for group in opt.param_groups:
        group["lr"] = lr


def _epochs(net: nn.Module, samples: Sequence[Sample], epochs: int, lr: float, seed: int,
            step: Callable[[Sample, torch.Tensor, torch.Generator], torch.Tensor | None],
            log: Callable[[str], None], name: str) -> None:
    """The shared loop: shuffle, rotate, ``step`` returns a loss (or None to skip)."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-5)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for epoch in range(epochs):
        _cosine_lr(opt, lr, epoch, epochs)
        t0, total, count = time.perf_counter(), 0.0, 0
        for idx in torch.randperm(len(samples), generator=gen).tolist():
            s = samples[idx]
            loss = step(s, rotate_phi(s.features, gen), gen)
            if loss is None:
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            total += float(loss.detach())
            count += 1
        log(f"{name} epoch {epoch + 1}/{epochs}: loss {total / max(count, 1):.4f} "
            f"({time.perf_counter() - t0:.1f} s)")
    net.eval()


# ----------------------------------------------------------------------------- embedding

def train_embedding(net: nn.Module, samples: Sequence[Sample], cfg: TrainConfig,
                    k: int, log: Callable[[str], None]) -> None:
    """Metric learning of the embedding net (see the module docstring)."""

    def step(s: Sample, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
        n = x.shape[0]
        if n < 2 or s.truth.shape[1] == 0:
            return None
        emb = net(x)
        hard = build_edges(emb.detach(), cfg.margin, k).clone()
        if hard.shape[1] > n * cfg.hard_negatives:
            pick = torch.randperm(hard.shape[1], generator=gen)[:n * cfg.hard_negatives]
            hard = hard[:, pick]
        rand = torch.randint(0, n, (2, n * cfg.random_negatives), generator=gen)
        rand = rand[:, rand[0] != rand[1]]
        cand = torch.cat([hard, rand], dim=1)
        neg = cand[:, ~same_particle(s.pid, cand)]
        pos = s.truth[:, s.pair_pt > cfg.embed_pt]
        if pos.shape[1] == 0:
            return None
        d_pos = (emb[pos[0]] - emb[pos[1]]).pow(2).sum(1)
        d_neg = (emb[neg[0]] - emb[neg[1]]).pow(2).sum(1).clamp_min(1e-12).sqrt()
        return d_pos.mean() + torch.relu(cfg.margin - d_neg).pow(2).mean()

    _epochs(net, samples, cfg.embed_epochs, cfg.lr, cfg.seed + 1, step, log, "embed")


def choose_radius(net: nn.Module, samples: Sequence[Sample], target: float) -> float:
    """The smallest radius keeping ``target`` of the signal truth pairs (validation)."""
    dists = []
    with torch.inference_mode():
        for s in samples:
            pairs = s.truth[:, s.signal]
            if pairs.shape[1]:
                emb = net(s.features)
                dists.append((emb[pairs[0]] - emb[pairs[1]]).norm(dim=1))
    if not dists:
        raise InputError("no truth pairs in the validation events")
    return float(torch.quantile(torch.cat(dists), target))


# ----------------------------------------------------------------------------- filter / gnn

def edge_truth(s: Sample, edges: torch.Tensor, min_pt: float) -> torch.Tensor:
    """bool ``[E]``: both ends belong to the same particle and its pT is above ``min_pt``."""
    return same_particle(s.pid, edges) & (s.hit_pt[edges[0]] > min_pt)


def _edge_step(net: nn.Module, graphs: list[torch.Tensor], samples: Sequence[Sample],
               cfg: TrainConfig
               ) -> Callable[[Sample, torch.Tensor, torch.Generator], torch.Tensor | None]:
    """Class-balanced BCE on each sample's graph (``graphs`` aligned with ``samples``); the
    true edges of signal particles weigh ``cfg.signal_weight``."""
    index = {id(s): i for i, s in enumerate(samples)}
    ys = [edge_truth(s, g, cfg.edge_pt).float() for s, g in zip(samples, graphs, strict=True)]
    ws = [1.0 + (cfg.signal_weight - 1.0) * (y * (s.hit_pt[g[0]] > cfg.signal_pt).float())
          for s, g, y in zip(samples, graphs, ys, strict=True)]

    def step(s: Sample, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
        i = index[id(s)]
        edges, y = graphs[i], ys[i]
        if edges.shape[1] == 0:
            return None
        pos = float(y.sum())
        weight = torch.tensor((y.numel() - pos) / max(pos, 1.0)).clamp(1.0, 20.0)
        logits = net(x, edges)
        return nn.functional.binary_cross_entropy_with_logits(logits, y, weight=ws[i],
                                                              pos_weight=weight)

    return step


def build_graphs(nets: Nets, cfg: PipelineConfig, samples: Sequence[Sample],
                 filtered: bool) -> list[torch.Tensor]:
    """Each sample's build edges (and, with ``filtered``, the edges the filter keeps)."""
    graphs = []
    with torch.inference_mode():
        for s in samples:
            edges = build_edges(nets.embed(s.features), cfg.radius, cfg.max_neighbours)
            if filtered:
                edges = filter_edges(nets.filter, s.features, edges, cfg.filter_cut)[0]
            graphs.append(edges)
    return [g.clone() for g in graphs]  # normal tensors, usable by autograd


def choose_filter_cut(nets: Nets, cfg: PipelineConfig, samples: Sequence[Sample],
                      target: float) -> float:
    """The highest cut keeping ``target`` of the signal truth pairs the build found."""
    scores = []
    with torch.inference_mode():
        for s, edges in zip(samples, build_graphs(nets, cfg, samples, False), strict=True):
            pairs = s.truth[:, s.signal]
            if pairs.shape[1] == 0 or edges.shape[1] == 0:
                continue
            n = s.features.shape[0]
            key = edges[0] * n + edges[1]
            wanted = pairs[0] * n + pairs[1]
            found = torch.isin(wanted, key)
            sc = filter_edges(nets.filter, s.features, edges, -1.0)[1]
            pos = torch.searchsorted(key, wanted[found])
            scores.append(sc[pos])
    if not scores:
        raise InputError("no truth pairs survive the build in the validation events")
    return float(torch.quantile(torch.cat(scores), 1.0 - target))


def choose_labelling(nets: Nets, cfg: PipelineConfig, events: Sequence[Event],
                     cuts: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95),
                     methods: Sequence[LabelMethod] = LABEL_METHODS
                     ) -> tuple[LabelMethod, float, dict[str, Any]]:
    """Scan label method and GNN cut on validation events.

    Returns:
        the best ``(method, cut, metrics)`` by track efficiency - fake rate - duplicate rate.
    """
    runs = [pipeline_from_nets(nets, cfg, scripted=False, num_threads=None)
            .run(e.features, keep_graph=True) for e in events]
    best: tuple[LabelMethod, float, float, dict[str, Any]] | None = None
    for method in methods:
        for cut in cuts:
            per_event = []
            for event, res in zip(events, runs, strict=True):
                kept, scores = res.graph["filter_edges"], res.graph["gnn_scores"]
                labels = label_event(torch.from_numpy(event.features), torch.from_numpy(kept),
                                     torch.from_numpy(scores), cut, method,
                                     cfg.selection).numpy()
                per_event.append(evaluate_event(event, labels, stage_edges(res.graph, cut)))
            summary = summarize(per_event)
            score = (summary["track_efficiency"] - summary["fake_rate"]
                     - summary["duplicate_rate"])
            if best is None or score > best[2]:
                best = (method, float(cut), score, summary)
    assert best is not None
    return best[0], best[1], best[3]


# ----------------------------------------------------------------------------- driver

@dataclass
class TrainResult:
    """What :func:`train` made: the config chosen and the validation metrics."""

    config: PipelineConfig
    metrics: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


def load_training_events(cfg: TrainConfig, data: Path | None,
                         progress: bool = True) -> tuple[list[Event], list[Event]]:
    """Training and validation events: read from ``data`` or simulated (HNL) on the fly."""
    if data is not None:
        events = [e for e in iter_events(data)]
        missing = [e.name for e in events if not e.has_truth]
        if missing:
            raise InputError(f"events without truth: {', '.join(missing[:3])}", data)
        n_val = max(1, min(cfg.val_events, len(events) // 5))
        if len(events) < 2:
            raise InputError("training needs at least 2 events with truth", data)
        return events[:-n_val], events[-n_val:]
    total = cfg.train_events + cfg.val_events
    events = list(tqdm(simulate_events("hnl", total, seed=cfg.seed, pileup=cfg.pileup),
                       total=total, desc="simulate", disable=not progress, leave=False))
    return events[:cfg.train_events], events[cfg.train_events:]


def train(cfg: TrainConfig, base: PipelineConfig | None = None, data: Path | None = None,
          log: Callable[[str], None] = print, progress: bool = True) -> tuple[Nets, TrainResult]:
    """Train the three nets and choose radius and cuts. See the module docstring."""
    torch.set_num_threads(cfg.threads)
    base = base or PipelineConfig()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    train_ev, val_ev = load_training_events(cfg, data, progress)
    train_s = [to_sample(e, cfg.signal_pt) for e in train_ev]
    val_s = [to_sample(e, cfg.signal_pt) for e in val_ev]
    seconds["data"] = time.perf_counter() - t0
    log(f"{len(train_s)} training and {len(val_s)} validation events, "
        f"{np.mean([s.features.shape[0] for s in train_s]):.0f} hits on average")

    nets = build_models(base, seed=cfg.seed)
    t = time.perf_counter()
    train_embedding(nets.embed, train_s, cfg, base.max_neighbours, log)
    radius = choose_radius(nets.embed, val_s, cfg.target_build_efficiency)
    pcfg = replace(base, radius=radius)
    seconds["embed"] = time.perf_counter() - t
    log(f"build radius {radius:.4f}")

    t = time.perf_counter()
    graphs = build_graphs(nets, pcfg, train_s, filtered=False)
    _epochs(nets.filter, train_s, cfg.filter_epochs, cfg.lr, cfg.seed + 2,
            _edge_step(nets.filter, graphs, train_s, cfg), log, "filter")
    pcfg = replace(pcfg, filter_cut=choose_filter_cut(nets, pcfg, val_s,
                                                      cfg.target_filter_efficiency))
    seconds["filter"] = time.perf_counter() - t
    log(f"filter cut {pcfg.filter_cut:.4f}")

    t = time.perf_counter()
    graphs = build_graphs(nets, pcfg, train_s, filtered=True)
    _epochs(nets.gnn, train_s, cfg.gnn_epochs, cfg.lr, cfg.seed + 3,
            _edge_step(nets.gnn, graphs, train_s, cfg), log, "gnn")
    method, cut, metrics = choose_labelling(nets, pcfg, val_ev)
    pcfg = replace(pcfg, gnn_cut=cut, label_method=method)
    seconds["gnn"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    log(f"label {method}, gnn cut {cut:.2f}: validation track efficiency "
        f"{metrics['track_efficiency']:.4f}, "
        f"fake rate {metrics['fake_rate']:.4f}, duplicate rate {metrics['duplicate_rate']:.4f}")
    return nets, TrainResult(pcfg, metrics, seconds)


def run_train(out: Path, data: Path | None = None, quick: bool = False,
              overrides: dict[str, Any] | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> TrainResult:
    """Train and write the weights folder (``exatrkx train``)."""
    cfg = TrainConfig.quick() if quick else TrainConfig()
    if overrides:
        cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    nets, result = train(cfg, data=data, log=log, progress=progress)
    meta = {
        "made_by": "exatrkx train" + (" --quick" if quick else ""),
        "data": str(data) if data is not None else f"simulated hnl, seed {cfg.seed}",
        "train_config": asdict(cfg),
        "validation_metrics": result.metrics,
        "train_seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    save_models(nets, result.config, out, meta)
    log(f"wrote weights to {out}")
    return result
