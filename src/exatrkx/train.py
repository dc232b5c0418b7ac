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

Recipes (``exatrkx train --recipe NAME``, :data:`RECIPES`): ``default`` as above;
``pu200`` (:func:`pileup_recipe`) for events with 200 pileup interactions, where step 1 is
the learning of a layer map (:func:`learn_layer_map`, the ``layer_pairs`` build) and the
filter and GNN train on sampled subgraphs (wedges in phi, :class:`Subgraph`). A run saves
a checkpoint after every epoch and ``--resume`` continues it (:class:`Checkpoint`).
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
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from exatrkx.config import (
    LABEL_METHODS,
    EmbedConfig,
    GNNConfig,
    LabelMethod,
    LayerMapConfig,
    PipelineConfig,
    SelectionConfig,
)
from exatrkx.core.models import Nets, build_models, save_models
from exatrkx.core.pipeline import pipeline_from_nets
from exatrkx.core.stages.build import build_edges
from exatrkx.core.stages.filter import filter_edges
from exatrkx.core.stages.label import label_event
from exatrkx.core.stages.layerpairs import (
    LayerEmbedding,
    build_layer_pairs,
    hit_coordinates,
    layer_geometry,
    orient_pairs,
    pair_candidate_counts,
    pair_residuals,
)
from exatrkx.errors import InputError
from exatrkx.io import Event, iter_events
from exatrkx.physics.metrics import evaluate_event, stage_edges, summarize
from exatrkx.physics.truth import hit_pt, require_truth, truth_graph
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
        subgraph_phi: each training step sees a wedge of this fraction of the azimuth
            (a sampled subgraph: its hits and the edges among them; 1 = the whole event).
            Bounds the memory and time of a step on events of 100k hits or more.
        label_events: at most this many validation events for the choice of the label
            method and the GNN cut (each runs the whole pipeline).
        layer_coverage: the ``layer_pairs`` build keeps the layer pairs that give the most
            truth pairs per candidate until they hold this fraction of the truth pairs
            (:func:`learn_layer_map`); ``embed_pt`` and ``target_build_efficiency`` set
            which pairs its windows learn from and how much of them they keep.
        label_min_pts: minimum fitted pT values of the track selection to choose from with
            the label method and the GNN cut (empty: keep the base config's).
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
    subgraph_phi: float = 1.0
    label_events: int = 20
    layer_coverage: float = 0.998
    label_min_pts: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.subgraph_phi <= 1.0:
            raise InputError(f"subgraph_phi must be in (0, 1], got {self.subgraph_phi}")

    @property
    def steps_per_event(self) -> int:
        """Training steps per event and epoch: as many wedges as make up the event."""
        return max(1, round(1.0 / self.subgraph_phi))

    @classmethod
    def quick(cls) -> TrainConfig:
        """A smoke model in about a minute (tests, CI): few events, few epochs."""
        return cls(train_events=12, val_events=4, embed_epochs=3, filter_epochs=2,
                   gnn_epochs=2)


def pileup_recipe() -> tuple[TrainConfig, PipelineConfig]:
    """The recipe of the ``pu200`` weights: events with 200 pileup interactions.

    - graph construction: ``layer_pairs`` (:mod:`exatrkx.core.stages.layerpairs`), a layer
      map learnt from the training events' truth pairs of particles above 0.9 GeV (windows
      keeping 99.5% of each layer pair's, the layer pairs worth their candidates until
      99.8% of those pairs are held): chosen over metric learning and a module map by
      measurement (edge efficiency against edges per hit);
    - filter and GNN: trained on wedges of 1/8 of the azimuth (sampled subgraphs, eight
      per event and epoch), learning the edges of particles above 0.7 GeV as true (no extra
      weight on signal edges); 3 filter and 2 GNN epochs, what fits in 90 minutes on two
      shared cores; the GNN with 8 message-passing steps (the shipped ``pu200`` set's);
    - labels: method, GNN cut and the track selection's minimum fitted pT (0.7-0.9 GeV)
      chosen on the validation events.

    Data: ``--data`` folders (ttbar and HNL with 200 pileup); the last events of each are
    the validation events.
    """
    train = TrainConfig(train_events=0, val_events=4, label_events=4, filter_epochs=3,
                        gnn_epochs=2, embed_pt=0.9, edge_pt=0.7, signal_weight=1.0,
                        subgraph_phi=0.125, threads=2, target_build_efficiency=0.995,
                        target_filter_efficiency=0.995, layer_coverage=0.998,
                        label_min_pts=(0.7, 0.8, 0.9))
    base = PipelineConfig(embed=EmbedConfig(kind="layers", out_dim=4),
                          gnn=GNNConfig(steps=8), build_method="layer_pairs",
                          selection=SelectionConfig(min_pt=0.7))
    return train, base


def default_recipe() -> tuple[TrainConfig, PipelineConfig]:
    """The recipe of the default weights (events without pileup)."""
    return TrainConfig(), PipelineConfig()


#: Named training recipes: ``exatrkx train --recipe NAME``.
RECIPES: dict[str, Callable[[], tuple[TrainConfig, PipelineConfig]]] = {
    "default": default_recipe, "pu200": pileup_recipe}
DEFAULT_RECIPE = "default"
#: The checkpoint file in the output folder while training runs.
CHECKPOINT_FILE = ".train-checkpoint.pt"
#: TrainConfig fields that only one step of training reads (``label``: the choice of label
#: method and cuts at the end). A resumed run may change them while that step has not
#: begun: what it makes is then what an uninterrupted run with the new settings makes.
STEP_SETTINGS: dict[str, tuple[str, ...]] = {
    "embed": ("embed_epochs",), "filter": ("filter_epochs",), "gnn": ("gnn_epochs",),
    "label": ("label_events", "label_min_pts")}


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
        event: the event it came from (None for training events: only the validation
            events need their tables, and 100k-hit events hold a lot of them).
    """

    features: torch.Tensor
    pid: torch.Tensor
    truth: torch.Tensor
    pair_pt: torch.Tensor
    hit_pt: torch.Tensor
    signal: torch.Tensor
    event: Event | None


def same_particle(pid: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """bool ``[E]``: both ends belong to the same (non-noise) particle."""
    a, b = pid[edges[0]], pid[edges[1]]
    return (a == b) & (a != 0)


def to_sample(event: Event, signal_pt: float = 1.0, keep_event: bool = True) -> Sample:
    """An event with truth -> a :class:`Sample` (signal: particles above ``signal_pt``);
    ``keep_event=False`` drops the reference to the event's tables."""
    pid = event.particle_id
    if pid is None:
        raise InputError(f"event {event.name} has no truth; training needs truth")
    pairs = truth_graph(pid, event.hit_id)
    pt = torch.from_numpy(hit_pt(event).astype(np.float32))
    pair_pt = pt[torch.from_numpy(pairs[0])]
    return Sample(torch.from_numpy(event.features.copy()), torch.from_numpy(pid.copy()),
                  torch.from_numpy(pairs), pair_pt, pt, pair_pt > signal_pt,
                  event if keep_event else None)


def rotate_phi(features: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The event turned by a random angle about the beam axis (phi/pi wrapped to [-1, 1))."""
    shift = float(torch.rand((), generator=generator)) * 2.0
    out = features.clone()
    out[:, 1] = torch.remainder(out[:, 1] + 1.0 + shift, 2.0) - 1.0
    return out


@dataclass
class Subgraph:
    """The hits of a wedge in phi and how to renumber edges into it.

    Attributes:
        keep: i64 ``[n]`` rows of the event's hits inside the wedge.
        remap: i64 ``[N]`` new row of each hit, -1 outside.
    """

    keep: torch.Tensor
    remap: torch.Tensor

    @classmethod
    def wedge(cls, features: torch.Tensor, fraction: float) -> Subgraph | None:
        """Hits with ``|phi| <= fraction * pi`` (the features are already turned by a
        random angle, so the wedge is a random one); None for ``fraction >= 1``."""
        if fraction >= 1.0:
            return None
        keep = torch.nonzero(features[:, 1].abs() <= fraction).squeeze(1)
        remap = torch.full((features.shape[0],), -1, dtype=torch.int64)
        remap[keep] = torch.arange(keep.numel())
        return cls(keep, remap)

    def edges(self, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(edges inside, renumbered [2, e], bool [E] which of the edges they were)``."""
        new = self.remap[edges.long()]
        inside = (new >= 0).all(dim=0)
        return new[:, inside], inside


def _cosine_lr(opt: torch.optim.Optimizer, base: float, epoch: int, epochs: int) -> None:
    lr = base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1))))
    for group in opt.param_groups:
        group["lr"] = lr


class Checkpoint:
    """Training state saved after every epoch, so that an interrupted run resumes.

    One file (``<out>/.train-checkpoint.pt``, removed when the weights are written) holds the
    three nets, the settings chosen so far, the stages finished, and the optimiser and
    random-generator state of the stage in progress: a resumed run continues with the
    next epoch and makes the same weights as an uninterrupted one.

    Args:
        path: the file (None: no checkpoints).
        fingerprint: what the run was asked to do (``train_config``: the TrainConfig as a
            dict; other keys compared as they are); a checkpoint of another run is refused,
            except that the settings of a step not yet begun (:data:`STEP_SETTINGS`, e.g.
            fewer GNN epochs while the GNN has not started) may differ.
        resume: continue from the file when it exists (else it is ignored and replaced).
    """

    def __init__(self, path: Path | None, fingerprint: dict[str, Any],
                 resume: bool = False) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.state: dict[str, Any] = {}
        if path is not None and resume and path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=False)
            begun = set(state.get("done", []))
            if state.get("current"):
                begun.add(state["current"]["stage"])
            saved = state.get("fingerprint")
            if (not isinstance(saved, dict)
                    or _comparable(saved, begun) != _comparable(fingerprint, begun)):
                raise InputError("the checkpoint is of a training run with other settings or "
                                 "data; remove it or train without --resume", path)
            self.state = state

    @property
    def done(self) -> list[str]:
        """Stages finished."""
        return list(self.state.get("done", []))

    def saved_config(self) -> PipelineConfig | None:
        """The settings chosen so far (None: no state)."""
        return PipelineConfig.from_dict(self.state["config"]) if self.state else None

    def restore(self, nets: Nets) -> None:
        """Load the saved nets (made with :meth:`saved_config`) into ``nets``."""
        if self.state:
            for name, module in nets.items():
                module.load_state_dict(self.state["nets"][name])

    def progress(self, stage: str) -> dict[str, Any] | None:
        """The saved state of ``stage`` in progress (epoch, optimiser, generator) or None."""
        current = self.state.get("current")
        return current if current and current.get("stage") == stage else None

    def save(self, nets: Nets, config: PipelineConfig, seconds: dict[str, float],
             done: Sequence[str], current: dict[str, Any] | None = None) -> None:
        if self.path is None:
            return
        self.state = {"fingerprint": self.fingerprint, "config": config.to_dict(),
                      "nets": {n: m.state_dict() for n, m in nets.items()},
                      "done": list(done), "current": current, "seconds": dict(seconds)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save(self.state, tmp)
        tmp.replace(self.path)

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _comparable(fingerprint: dict[str, Any], begun: set[str]) -> dict[str, Any]:
    """``fingerprint`` less the settings of the steps not in ``begun``."""
    config = dict(fingerprint.get("train_config", {}))
    for step, keys in STEP_SETTINGS.items():
        if step not in begun:
            for key in keys:
                config.pop(key, None)
    return {**fingerprint, "train_config": config}


def _epochs(net: nn.Module, samples: Sequence[Sample], epochs: int, lr: float, seed: int,
            step: Callable[[Sample, torch.Tensor, torch.Generator], torch.Tensor | None],
            log: Callable[[str], None], name: str, repeats: int = 1,
            saved: dict[str, Any] | None = None,
            on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
    """The shared loop: shuffle, rotate, ``step`` returns a loss (or None to skip).

    Args:
        repeats: steps per event and epoch (each with its own random rotation; with
            subgraphs, an epoch then sees about the whole of every event).
        saved: a checkpoint's state of this stage (continue after its epoch).
        on_epoch: called with this stage's state after every epoch (for checkpoints).
    """
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-5)
    gen = torch.Generator().manual_seed(seed)
    first = 0
    if saved is not None:
        opt.load_state_dict(saved["optimizer"])
        gen.set_state(saved["generator"])
        first = int(saved["epoch"])
    net.train()
    for epoch in range(first, epochs):
        _cosine_lr(opt, lr, epoch, epochs)
        t0, total, count = time.perf_counter(), 0.0, 0
        order = torch.cat([torch.randperm(len(samples), generator=gen)
                           for _ in range(repeats)]).tolist()
        for idx in order:
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
        if on_epoch is not None:
            on_epoch({"stage": name, "epoch": epoch + 1, "optimizer": opt.state_dict(),
                      "generator": gen.get_state()})
    net.eval()


# ----------------------------------------------------------------------------- embedding

def train_embedding(net: nn.Module, samples: Sequence[Sample], cfg: TrainConfig,
                    k: int, log: Callable[[str], None], saved: dict[str, Any] | None = None,
                    on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Metric learning of the embedding net (see the module docstring)."""

    def step(s: Sample, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
        pos = s.truth[:, s.pair_pt > cfg.embed_pt]
        pid = s.pid
        sub = Subgraph.wedge(x, cfg.subgraph_phi)
        if sub is not None:
            x, pid = x[sub.keep], pid[sub.keep]
            pos = sub.edges(pos)[0]
        n = x.shape[0]
        if n < 2 or pos.shape[1] == 0:
            return None
        emb = net(x)
        hard = build_edges(emb.detach(), cfg.margin, k).clone()
        if hard.shape[1] > n * cfg.hard_negatives:
            pick = torch.randperm(hard.shape[1], generator=gen)[:n * cfg.hard_negatives]
            hard = hard[:, pick]
        rand = torch.randint(0, n, (2, n * cfg.random_negatives), generator=gen)
        rand = rand[:, rand[0] != rand[1]]
        cand = torch.cat([hard, rand], dim=1)
        neg = cand[:, ~same_particle(pid, cand)]
        d_pos = (emb[pos[0]] - emb[pos[1]]).pow(2).sum(1)
        d_neg = (emb[neg[0]] - emb[neg[1]]).pow(2).sum(1).clamp_min(1e-12).sqrt()
        return d_pos.mean() + torch.relu(cfg.margin - d_neg).pow(2).mean()

    _epochs(net, samples, cfg.embed_epochs, cfg.lr, cfg.seed + 1, step, log, "embed",
            cfg.steps_per_event, saved, on_epoch)


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


# ----------------------------------------------------------------------------- layer map

def learn_layer_map(events: Sequence[Event], pt_min: float, efficiency: float,
                    coverage: float = 0.998, margin: float = 0.1, pad_mm: float = 1.0,
                    min_pairs: int = 5, count_events: int = 4
                    ) -> tuple[LayerMapConfig, dict[str, float]]:
    """The layer map of the ``layer_pairs`` build, learnt from simulated events.

    - boxes: each detector layer (volume and layer id of the hits) as the ``(r, z)`` range
      of its hits, widened by ``pad_mm``;
    - windows: for each layer pair that consecutive hits of particles above ``pt_min``
      (the truth graph, oriented by :func:`~exatrkx.core.stages.layerpairs.orient_pairs`)
      connect at least ``min_pairs`` times, the central ``efficiency`` of those hit pairs'
      ``dphi`` and ``du`` (:func:`~exatrkx.core.stages.layerpairs.pair_residuals`), widened
      by ``margin`` of their width on each side;
    - pairs kept: layer pairs differ a lot in what they cost (candidates in an event, on
      ``count_events`` of the events) for what they bring (truth pairs in their windows):
      the pairs are taken best ratio first until they hold ``coverage`` of the truth pairs
      in windows, the rest dropped.

    Returns:
        the map and numbers on these events (``truth_pairs``, ``pairs_in_windows``,
        ``pairs_kept`` (truth pairs held by the kept layer pairs), ``layer_pairs``,
        ``candidates_per_hit`` of the kept pairs on the counted events).
    """
    ranges: dict[tuple[int, int], np.ndarray] = {}
    for e in events:
        if e.hits is None or not {"volume_id", "layer_id"} <= set(e.hits.columns):
            raise InputError(f"event {e.name} has no volume and layer ids; the layer map "
                             "needs TrackML hits files")
        f = e.features.astype(np.float64)
        df = pd.DataFrame({"v": e.hits["volume_id"].to_numpy(),
                           "l": e.hits["layer_id"].to_numpy(),
                           "r": f[:, 0] * 1000, "z": f[:, 2] * 1000})
        g = df.groupby(["v", "l"]).agg(r_lo=("r", "min"), r_hi=("r", "max"),
                                       z_lo=("z", "min"), z_hi=("z", "max"))
        for key, row in zip(g.index, g.to_numpy(np.float64), strict=True):
            old = ranges.get(key)
            ranges[key] = row if old is None else np.array(
                [min(old[0], row[0]), max(old[1], row[1]), min(old[2], row[2]),
                 max(old[3], row[3])])
    if not ranges:
        raise InputError("no hits to learn the layer map from")
    boxes = tuple((float(b[0] - pad_mm), float(b[1] + pad_mm), float(b[2] - pad_mm),
                   float(b[3] + pad_mm)) for b in (ranges[k] for k in sorted(ranges)))
    box_array = np.asarray(boxes)
    assign = LayerEmbedding(LayerMapConfig(boxes=boxes))
    barrel, pos = layer_geometry(box_array)
    parts: list[tuple[np.ndarray, ...]] = []
    embeddings: list[torch.Tensor] = []
    for e in events:
        with torch.inference_mode():
            emb = assign(torch.from_numpy(e.features))
        if len(embeddings) < count_events:
            embeddings.append(emb)
        r, phi, z, layer = hit_coordinates(emb)
        pairs = truth_graph(require_truth(e), e.hit_id)
        pairs = pairs[:, hit_pt(e)[pairs[0]] > pt_min]
        inner, outer = orient_pairs(r, z, layer, pairs[0], pairs[1], box_array)
        ok = (layer[inner] >= 0) & (layer[outer] >= 0)
        inner, outer = inner[ok], outer[ok]
        lo = layer[outer]
        dphi, du = pair_residuals(r, phi, z, inner, outer, barrel[lo], pos[lo])
        parts.append((layer[inner], lo, dphi, du))
    li, lo, dphi, du = (np.concatenate([p[i] for p in parts]) for i in range(4))
    finite = np.isfinite(du)
    total = int(li.size)
    li, lo, dphi, du = li[finite], lo[finite], dphi[finite], du[finite]
    tail = (1.0 - efficiency) / 2
    rows: list[tuple[int, int, float, float, float, float]] = []
    held: list[int] = []
    key = li * len(boxes) + lo
    order = np.argsort(key, kind="stable")
    uniq, start, count = np.unique(key[order], return_index=True, return_counts=True)
    for k, s0, c in zip(uniq, start, count, strict=True):
        if c < min_pairs:
            continue
        idx = order[s0:s0 + c]
        win = []
        for values in (dphi[idx], du[idx]):
            q_lo, q_hi = np.quantile(values, [tail, 1.0 - tail])
            width = q_hi - q_lo
            win += [float(q_lo - margin * width), float(q_hi + margin * width)]
        rows.append((int(k // len(boxes)), int(k % len(boxes)), win[0], win[1], win[2],
                     win[3]))
        held.append(int(((dphi[idx] >= win[0]) & (dphi[idx] <= win[1])
                         & (du[idx] >= win[2]) & (du[idx] <= win[3])).sum()))
    candidates = np.zeros(len(rows), np.int64)
    for emb in embeddings:
        candidates += pair_candidate_counts(emb, LayerMapConfig(boxes, tuple(rows)))
    held_a = np.asarray(held, dtype=np.float64)
    best = np.argsort(-held_a / np.maximum(candidates, 1), kind="stable")
    cum = np.cumsum(held_a[best])
    n_keep = int(np.searchsorted(cum, coverage * cum[-1]) + 1) if cum.size else 0
    keep = np.sort(best[:n_keep])
    hits = sum(int(emb.shape[0]) for emb in embeddings)
    layer_map = LayerMapConfig(boxes=boxes, pairs=tuple(rows[i] for i in keep))
    return layer_map, {"truth_pairs": total, "pairs_in_windows": int(held_a.sum()),
                       "pairs_kept": int(held_a[keep].sum()), "layers": len(boxes),
                       "layer_pairs": len(keep),
                       "candidates_per_hit": float(candidates[keep].sum() / max(hits, 1))}


# ----------------------------------------------------------------------------- filter / gnn

def edge_truth(s: Sample, edges: torch.Tensor, min_pt: float) -> torch.Tensor:
    """bool ``[E]``: both ends belong to the same particle and its pT is above ``min_pt``."""
    return same_particle(s.pid, edges) & (s.hit_pt[edges[0]] > min_pt)


def _edge_step(net: nn.Module, graphs: list[torch.Tensor], samples: Sequence[Sample],
               cfg: TrainConfig
               ) -> Callable[[Sample, torch.Tensor, torch.Generator], torch.Tensor | None]:
    """Class-balanced BCE on each sample's graph (``graphs`` aligned with ``samples``), or on
    a wedge of it (``cfg.subgraph_phi < 1``: see :class:`Subgraph`); the true edges of
    signal particles weigh ``cfg.signal_weight``."""
    index = {id(s): i for i, s in enumerate(samples)}
    ys = [edge_truth(s, g.long(), cfg.edge_pt) for s, g in zip(samples, graphs, strict=True)]
    signal = None if cfg.signal_weight == 1.0 else [
        y & (s.hit_pt[g[0].long()] > cfg.signal_pt)
        for s, g, y in zip(samples, graphs, ys, strict=True)]

    def step(s: Sample, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
        i = index[id(s)]
        edges, truth = graphs[i], ys[i]
        sig = None if signal is None else signal[i]
        sub = Subgraph.wedge(x, cfg.subgraph_phi)
        if sub is not None:
            x = x[sub.keep]
            edges, inside = sub.edges(edges)
            truth = truth[inside]
            sig = None if sig is None else sig[inside]
        edges, y = edges.long(), truth.float()
        if edges.shape[1] == 0:
            return None
        pos = float(y.sum())
        weight = torch.tensor((y.numel() - pos) / max(pos, 1.0)).clamp(1.0, 20.0)
        w = None if sig is None else 1.0 + (cfg.signal_weight - 1.0) * sig.float()
        logits = net(x, edges)
        return nn.functional.binary_cross_entropy_with_logits(logits, y, weight=w,
                                                              pos_weight=weight)

    return step


def build_stage(cfg: PipelineConfig, embedding: torch.Tensor) -> torch.Tensor:
    """The build of ``cfg`` (its method, as the pipeline runs it) on one event."""
    if cfg.build_method == "layer_pairs":
        return build_layer_pairs(embedding, cfg.layers, cfg.max_neighbours)
    return build_edges(embedding, cfg.radius, cfg.max_neighbours)


def build_graphs(nets: Nets, cfg: PipelineConfig, samples: Sequence[Sample],
                 filtered: bool, compact: bool = False) -> list[torch.Tensor]:
    """Each sample's build edges (and, with ``filtered``, the edges the filter keeps);
    ``compact`` stores them as int32 (half the memory; the steps widen them)."""
    graphs = []
    with torch.inference_mode():
        for s in samples:
            edges = build_stage(cfg, nets.embed(s.features))
            if filtered:
                edges = filter_edges(nets.filter, s.features, edges, cfg.filter_cut)[0]
            graphs.append(edges.to(torch.int32) if compact else edges)
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
                     methods: Sequence[LabelMethod] = LABEL_METHODS,
                     min_pts: Sequence[float] = ()
                     ) -> tuple[LabelMethod, float, float, dict[str, Any]]:
    """Scan label method, GNN cut and (given ``min_pts``) the track selection's minimum pT
    on validation events.

    Returns:
        the best ``(method, cut, min_pt, metrics)`` by track efficiency - fake rate -
        duplicate rate.
    """
    runs = [pipeline_from_nets(nets, cfg, scripted=False, num_threads=None)
            .run(e.features, keep_graph=True) for e in events]
    best: tuple[LabelMethod, float, float, float, dict[str, Any]] | None = None
    for min_pt in (min_pts or (cfg.selection.min_pt,)):
        selection = replace(cfg.selection, min_pt=float(min_pt))
        for method in methods:
            for cut in cuts:
                per_event = []
                for event, res in zip(events, runs, strict=True):
                    kept, scores = res.graph["filter_edges"], res.graph["gnn_scores"]
                    labels = label_event(torch.from_numpy(event.features),
                                         torch.from_numpy(kept), torch.from_numpy(scores),
                                         cut, method, selection).numpy()
                    per_event.append(evaluate_event(event, labels,
                                                    stage_edges(res.graph, cut)))
                summary = summarize(per_event)
                score = (summary["track_efficiency"] - summary["fake_rate"]
                         - summary["duplicate_rate"])
                if best is None or score > best[3]:
                    best = (method, float(cut), float(min_pt), score, summary)
    assert best is not None
    return best[0], best[1], best[2], best[4]


# ----------------------------------------------------------------------------- driver

@dataclass
class TrainResult:
    """What :func:`train` made: the config chosen and the validation metrics."""

    config: PipelineConfig
    metrics: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


def _split(events: list[Event], n_val: int) -> tuple[list[Event], list[Event]]:
    return events[:-n_val], events[-n_val:]


def load_training_events(cfg: TrainConfig, data: Path | Sequence[Path] | None,
                         progress: bool = True) -> tuple[list[Event], list[Event]]:
    """Training and validation events: read from ``data`` (one folder or several; the
    validation events are the last ones of each folder, shared out evenly) or simulated
    (HNL) on the fly."""
    if data is not None:
        folders = [Path(data)] if isinstance(data, str | Path) else [Path(d) for d in data]
        if not folders:
            raise InputError("no training data folders given")
        per_folder = max(1, math.ceil(cfg.val_events / len(folders)))
        train_ev: list[Event] = []
        val_ev: list[Event] = []
        for folder in folders:
            events = list(tqdm(iter_events(folder), desc=f"read {folder.name}",
                               disable=not progress, leave=False))
            missing = [e.name for e in events if not e.has_truth]
            if missing:
                raise InputError(f"events without truth: {', '.join(missing[:3])}", folder)
            if len(events) < 2:
                raise InputError("training needs at least 2 events with truth", folder)
            tr, va = _split(events, max(1, min(per_folder, len(events) // 5)))
            train_ev += tr
            val_ev += va
        return train_ev, val_ev
    total = cfg.train_events + cfg.val_events
    events = list(tqdm(simulate_events("hnl", total, seed=cfg.seed, pileup=cfg.pileup),
                       total=total, desc="simulate", disable=not progress, leave=False))
    return events[:cfg.train_events], events[cfg.train_events:]


def _edges_per_hit(graphs: Sequence[torch.Tensor], samples: Sequence[Sample]) -> float:
    hits = sum(s.features.shape[0] for s in samples)
    return sum(g.shape[1] for g in graphs) / max(hits, 1)


def train(cfg: TrainConfig, base: PipelineConfig | None = None,
          data: Path | Sequence[Path] | None = None, log: Callable[[str], None] = print,
          progress: bool = True, checkpoint: Checkpoint | None = None
          ) -> tuple[Nets, TrainResult]:
    """Train the three nets and choose radius and cuts. See the module docstring."""
    t0 = time.perf_counter()
    train_ev, val_ev = load_training_events(cfg, data, progress)
    return train_events(cfg, train_ev, val_ev, base, log, checkpoint,
                        data_seconds=time.perf_counter() - t0)


def train_events(cfg: TrainConfig, train_ev: Sequence[Event], val_ev: Sequence[Event],
                 base: PipelineConfig | None = None, log: Callable[[str], None] = print,
                 checkpoint: Checkpoint | None = None, data_seconds: float = 0.0
                 ) -> tuple[Nets, TrainResult]:
    """:func:`train` on events already read; ``checkpoint`` saves (and resumes) each epoch.

    The training events' tables (hits, truth, particles) are released once their samples
    are made (events of 200 pileup hold hundreds of MB of them).
    """
    torch.set_num_threads(cfg.threads)
    base = base or PipelineConfig()
    ck = checkpoint or Checkpoint(None, {})
    t0 = time.perf_counter()
    train_s = [to_sample(e, cfg.signal_pt, keep_event=False) for e in train_ev]
    val_s = [to_sample(e, cfg.signal_pt, keep_event=False) for e in val_ev]
    layer_map = None
    if base.embed.kind == "layers" and "embed" not in ck.done:
        layer_map = learn_layer_map(train_ev, cfg.embed_pt, cfg.target_build_efficiency,
                                    cfg.layer_coverage)
    for e in train_ev:  # the samples hold what training needs; the tables are large
        e.hits = e.truth = e.particles = None
    seconds: dict[str, float] = dict(ck.state.get("seconds", {}))
    seconds["data"] = seconds.get("data", 0.0) + data_seconds + time.perf_counter() - t0
    log(f"{len(train_s)} training and {len(val_s)} validation events, "
        f"{np.mean([s.features.shape[0] for s in train_s]):.0f} hits on average")

    restored = ck.saved_config()
    pcfg = restored or base
    nets = build_models(pcfg, seed=cfg.seed)
    ck.restore(nets)
    done = ck.done
    if done or ck.state.get("current"):
        log(f"resuming after {', '.join(done) or 'nothing'}"
            + (f" ({ck.state['current']['stage']} epoch {ck.state['current']['epoch']})"
               if ck.state.get("current") else ""))

    def timed(stage: str) -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
        """A stage's epoch saver and its end (time counted on top of a resumed run's)."""
        before, start = seconds.get(stage, 0.0), time.perf_counter()

        def on_epoch(current: dict[str, Any]) -> None:
            seconds[stage] = before + time.perf_counter() - start
            ck.save(nets, pcfg, seconds, done, current)

        def finish() -> None:
            seconds[stage] = before + time.perf_counter() - start
            done.append(stage)
            ck.save(nets, pcfg, seconds, done)
        return on_epoch, finish

    if "embed" not in done:
        on_epoch, finish = timed("embed")
        if layer_map is not None:
            pcfg = replace(pcfg, layers=layer_map[0])
            coverage = layer_map[1]
            nets.embed = build_models(pcfg, seed=cfg.seed).embed
            log(f"layer map: {coverage['layers']} layers, {coverage['layer_pairs']} layer "
                f"pairs holding {coverage['pairs_kept']} of {coverage['truth_pairs']} "
                f"training pairs above {cfg.embed_pt} GeV "
                f"({coverage['candidates_per_hit']:.1f} candidates per hit)")
        else:
            train_embedding(nets.embed, train_s, cfg, base.max_neighbours, log,
                            ck.progress("embed"), on_epoch)
            pcfg = replace(pcfg, radius=choose_radius(nets.embed, val_s,
                                                      cfg.target_build_efficiency))
        finish()
    if pcfg.build_method == "radius":
        log(f"build radius {pcfg.radius:.4f}")

    if "filter" not in done:
        on_epoch, finish = timed("filter")
        graphs = build_graphs(nets, pcfg, train_s, filtered=False, compact=True)
        log(f"build: {_edges_per_hit(graphs, train_s):.2f} edges per hit")
        _epochs(nets.filter, train_s, cfg.filter_epochs, cfg.lr, cfg.seed + 2,
                _edge_step(nets.filter, graphs, train_s, cfg), log,
                "filter", cfg.steps_per_event, ck.progress("filter"), on_epoch)
        del graphs
        pcfg = replace(pcfg, filter_cut=choose_filter_cut(nets, pcfg, val_s,
                                                          cfg.target_filter_efficiency))
        finish()
    log(f"filter cut {pcfg.filter_cut:.4f}")

    if "gnn" not in done:
        on_epoch, finish = timed("gnn")
        graphs = build_graphs(nets, pcfg, train_s, filtered=True)
        log(f"filter: {_edges_per_hit(graphs, train_s):.2f} edges per hit")
        _epochs(nets.gnn, train_s, cfg.gnn_epochs, cfg.lr, cfg.seed + 3,
                _edge_step(nets.gnn, graphs, train_s, cfg), log,
                "gnn", cfg.steps_per_event, ck.progress("gnn"), on_epoch)
        del graphs
        finish()

    t = time.perf_counter()
    method, cut, min_pt, metrics = choose_labelling(
        nets, pcfg, list(val_ev)[:cfg.label_events], min_pts=cfg.label_min_pts)
    pcfg = replace(pcfg, gnn_cut=cut, label_method=method,
                   selection=replace(pcfg.selection, min_pt=min_pt))
    seconds["label"] = time.perf_counter() - t
    seconds["total"] = sum(v for k, v in seconds.items() if k != "total")
    log(f"label {method}, gnn cut {cut:.2f}, tracks above {min_pt:g} GeV: validation track "
        f"efficiency "
        f"{metrics['track_efficiency']:.4f}, "
        f"fake rate {metrics['fake_rate']:.4f}, duplicate rate {metrics['duplicate_rate']:.4f}")
    return nets, TrainResult(pcfg, metrics, seconds)


def run_train(out: Path, data: Path | Sequence[Path] | None = None, quick: bool = False,
              overrides: dict[str, Any] | None = None, progress: bool = True,
              log: Callable[[str], None] = print, recipe: str | None = None,
              resume: bool = False) -> TrainResult:
    """Train and write the weights folder (``exatrkx train``).

    Args:
        out: the weights folder (its checkpoint file lives there until the end).
        data: folder(s) of events with truth (default: simulate HNL events).
        quick: a smoke model (see :meth:`TrainConfig.quick`).
        overrides: TrainConfig fields to change.
        recipe: a named recipe (:data:`RECIPES`) instead of the default one.
        resume: continue an interrupted run from its checkpoint in ``out``.
    """
    if recipe is not None and recipe not in RECIPES:
        raise InputError(f"unknown recipe {recipe!r} (known: {', '.join(RECIPES)})")
    cfg, base = RECIPES[recipe or DEFAULT_RECIPE]()
    if quick:
        q = TrainConfig.quick()
        cfg = replace(cfg, train_events=q.train_events, val_events=q.val_events,
                      embed_epochs=q.embed_epochs, filter_epochs=q.filter_epochs,
                      gnn_epochs=q.gnn_epochs, label_events=q.val_events)
    if overrides:
        cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    folders = ([] if data is None else [Path(data)] if isinstance(data, str | Path)
               else [Path(d) for d in data])
    fingerprint = {"train_config": asdict(cfg), "base": base.to_dict(),
                   "data": [str(d.resolve()) for d in folders]}
    checkpoint = Checkpoint(Path(out) / CHECKPOINT_FILE, fingerprint, resume)
    nets, result = train(cfg, base=base, data=folders or None, log=log, progress=progress,
                         checkpoint=checkpoint)
    made_by = "exatrkx train" + (" --quick" if quick else "") + (
        f" --recipe {recipe}" if recipe else "")
    meta = {
        "made_by": made_by,
        "data": ", ".join(str(d) for d in folders) if folders
        else f"simulated hnl, seed {cfg.seed}",
        "train_config": asdict(cfg),
        "validation_metrics": result.metrics,
        "train_seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    save_models(nets, result.config, out, meta)
    checkpoint.remove()
    log(f"wrote weights to {out}")
    return result
