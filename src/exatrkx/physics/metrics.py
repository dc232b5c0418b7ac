"""Physics performance: edge efficiency/purity per stage, track efficiency, fakes, duplicates.

All functions are plain numpy/pandas over an :class:`~exatrkx.io.Event` with truth, the
labels of its hits and, for edge metrics, the edges of each stage. Hit indices are row
indices of the event (``0..N-1``).

Definitions:

- **true edge**: both hits belong to the same particle, and it is not noise
  (``particle_id 0``).
- **truth graph**: see :mod:`exatrkx.physics.truth`. **Edge efficiency** of a stage
  = truth-graph edges present among the stage's edges / truth-graph edges. **Edge purity**
  = true edges / all edges of the stage (any same-particle pair counts as true).
- **stages**: ``build`` (all candidate edges), ``filter`` (edges the filter kept), ``gnn``
  (kept edges with GNN score above the cut: the graph the labels come from). The headline
  ``edge_efficiency`` / ``edge_purity`` are those of ``gnn``.
- **tracks**: hits sharing a label >= 0 (label -1 = in no track): the tracks the pipeline
  reports, i.e. after the label stage's minimum-pT selection (:mod:`exatrkx.core.stages.select`);
  or lists of hits that may overlap (fitted tracks of the ACTS chain, :func:`evaluate_tracks`).
  **Matching** (double majority): a track matches a particle when > 50% of the track's
  hits are the particle's and the track holds > 50% of the particle's hits in the event
  (so a particle matches at most one track of labels; overlapping tracks can both match it,
  and the particle then counts once). ACTS' own truth matcher uses >= 50% instead.
- **reconstructable particle**: not noise, ``pT > pt_min`` (1 GeV) and ``>= min_hits`` (5)
  hits in the event. **Track efficiency** = matched reconstructable particles /
  reconstructable particles; ``track_efficiency_displaced`` the same for those produced at
  transverse radius > ``displaced_r`` (10 mm).
- **candidate tracks**: tracks with ``>= min_track_hits`` (5) hits. **Fake rate** =
  candidate tracks matching no particle (double majority) / candidate tracks; a piece of
  a particle split in two counts as fake here. ``fake_rate_majority`` is the looser
  convention of ACTS: candidate tracks in which no real particle has > 50% of the hits.
- **duplicate rate**: double majority cannot match two tracks to one particle, so
  duplicates are counted with the track majority alone: among candidate tracks whose
  majority (> 50%) particle is a real one, those beyond the first of each particle /
  all such tracks. A particle split in two therefore shows as duplicate (and fakes).
- **TrackML score**: sum of truth weights of the hits shared by matched track-particle
  pairs, over the sum of all truth weights (noise weighs 0).
- **binned efficiency**: vs pT for non-noise particles with ``>= min_hits`` hits (no pT
  cut); vs eta and vs production radius for reconstructable particles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from exatrkx.io import Event
from exatrkx.physics.truth import event_truth_graph, particle_table, require_truth

EDGE_STAGES = ("build", "filter", "gnn")

PT_BINS = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0])
ETA_BINS = np.linspace(-4.0, 4.0, 17)
RADIUS_BINS = np.array([0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 300.0, 500.0, 700.0,
                        1000.0])


@dataclass(frozen=True)
class MetricsConfig:
    """Cuts of the track metrics (see the module docstring)."""

    pt_min: float = 1.0
    min_hits: int = 5
    min_track_hits: int = 5
    displaced_r: float = 10.0


@dataclass
class EventMetrics:
    """Counts of one event; :func:`summarize` turns a list of them into rates.

    Attributes:
        name: event name.
        counts: integer counts (keys: see :func:`evaluate_event`).
        trackml_weight: matched weight and total weight (for the TrackML score).
        particles: one row per non-noise particle: ``particle_id, pt, eta, radius, nhits,
            reconstructable, matched, track`` (the matched track, -1 = none).
    """

    name: str
    counts: dict[str, int] = field(default_factory=dict)
    trackml_weight: tuple[float, float] = (0.0, 0.0)
    particles: pd.DataFrame = field(default_factory=pd.DataFrame)


# --------------------------------------------------------------------------- edges

def _keys(edges: np.ndarray, n: int) -> np.ndarray:
    e = np.asarray(edges, dtype=np.int64).reshape(2, -1)
    return np.maximum(e[0], e[1]) * n + np.minimum(e[0], e[1])


def edge_counts(event: Event, edges: np.ndarray, truth: np.ndarray | None = None
                ) -> dict[str, int]:
    """``edges`` (any orientation, ``[2, E]``) against the truth.

    Returns:
        ``{"edges": E (unique), "true": true edges, "truth": truth-graph edges,
        "truth_found": truth-graph edges among them}``.
    """
    pid = require_truth(event)
    n = event.num_hits
    truth = event_truth_graph(event) if truth is None else truth
    keys = np.unique(_keys(edges, n))
    a, b = keys // max(n, 1), keys % max(n, 1)
    true = (pid[a] == pid[b]) & (pid[a] != 0)
    tkeys = _keys(truth, n)
    return {"edges": int(keys.size), "true": int(true.sum()), "truth": int(tkeys.size),
            "truth_found": int(np.isin(tkeys, keys, assume_unique=True).sum())}


# --------------------------------------------------------------------------- tracks

def evaluate_event(event: Event, labels: np.ndarray,
                   edges: Mapping[str, np.ndarray] | None = None,
                   config: MetricsConfig | None = None) -> EventMetrics:
    """Count everything the summary needs for one event whose tracks are labels.

    Args:
        event: with truth.
        labels: int64 ``[N]`` track of each hit, -1 = none (track ``t`` = hits labelled
            ``t``; the ``track`` column of the result's particles is that label).
        edges: optional ``{"build": [2,E], "filter": [2,E'], "gnn": [2,E'']}``.
        config: cuts.

    Returns:
        counts keys: those of :func:`evaluate_tracks` and, per edge stage ``s``,
        ``s_edges, s_true, s_truth, s_truth_found``.
    """
    require_truth(event)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (event.num_hits,):
        raise ValueError(f"{event.name}: {labels.shape} labels for {event.num_hits} hits")
    counts: dict[str, int] = {}
    if edges:
        truth = event_truth_graph(event)
        for stage, e in edges.items():
            for key, value in edge_counts(event, e, truth).items():
                counts[f"{stage}_{key}"] = value
    rows = np.flatnonzero(labels >= 0)
    n_slots = int(labels.max()) + 1 if rows.size else 0
    metrics = _match_tracks(event, labels[rows], rows, n_slots, config)
    metrics.counts = {**counts, **metrics.counts}
    return metrics


def evaluate_tracks(event: Event, tracks: Sequence[np.ndarray],
                    config: MetricsConfig | None = None) -> EventMetrics:
    """Count everything the summary needs for one event whose tracks are lists of hits.

    The same definitions as for labels (see the module docstring); tracks may share hits
    (a fitted track finder's tracks can), so two tracks can match one particle by double
    majority: the particle is matched once (its ``track`` is the first such track), the
    second track counts as a duplicate, and the TrackML score counts the particle once.

    Args:
        event: with truth.
        tracks: per track, int ``[n]`` row indices of its hits in the event.
        config: cuts.

    Returns:
        counts keys ``tracks, candidate_tracks, fake_tracks, majority_tracks,
        duplicate_tracks, reconstructable, matched_reconstructable, displaced,
        matched_displaced``; particles with ``track`` = index of the matched track (-1 none).
    """
    require_truth(event)
    sizes = np.array([len(t) for t in tracks], dtype=np.int64)
    rows = (np.concatenate([np.asarray(t, dtype=np.int64) for t in tracks]) if sizes.sum()
            else np.zeros(0, dtype=np.int64))
    if rows.size and (rows.min() < 0 or rows.max() >= event.num_hits):
        raise ValueError(f"{event.name}: a track holds a hit row outside 0-{event.num_hits - 1}")
    owner = np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)
    return _match_tracks(event, owner, rows, int(sizes.size), config)


def _match_tracks(event: Event, owner: np.ndarray, rows: np.ndarray, n_slots: int,
                  config: MetricsConfig | None) -> EventMetrics:
    """Double-majority matching of tracks given as (track, hit row) pairs: ``owner[i]`` is
    the track (``0..n_slots-1``) holding hit row ``rows[i]``."""
    cfg = config or MetricsConfig()
    pid = require_truth(event)
    counts: dict[str, int] = {}
    parts = particle_table(event)
    n_parts = len(parts)
    track_size = np.bincount(owner, minlength=n_slots)
    # (track, particle) pairs with their shared hits and shared weight
    real = pid[rows] != 0
    t_real, h_real = owner[real], rows[real]
    pcol = np.searchsorted(parts["particle_id"].to_numpy(np.int64), pid[h_real])
    pair_key = t_real * max(n_parts, 1) + pcol
    assert event.truth is not None  # require_truth checked it
    weight = event.truth["weight"].to_numpy(np.float64)
    uniq, inv = np.unique(pair_key, return_inverse=True)
    shared = np.bincount(inv, minlength=uniq.size)
    shared_w = np.bincount(inv, weights=weight[h_real], minlength=uniq.size)
    t_of, p_of = uniq // max(n_parts, 1), uniq % max(n_parts, 1)
    nhits = parts["nhits"].to_numpy(np.int64)
    track_major = shared * 2 > track_size[t_of] if uniq.size else np.zeros(0, bool)
    dm = track_major & (shared * 2 > nhits[p_of])
    # a particle is matched once, by its first double-majority track
    order = np.argsort(t_of[dm], kind="stable")
    dm_t, dm_p = t_of[dm][order], p_of[dm][order]
    dm_w = shared_w[dm][order]
    once = ~pd.Series(dm_p).duplicated().to_numpy()

    matched_track_of = np.full(n_parts, -1, dtype=np.int64)
    matched_track_of[dm_p[once]] = dm_t[once]
    matched_part = matched_track_of >= 0
    matched_track = np.zeros(n_slots, dtype=bool)
    matched_track[t_of[dm]] = True
    candidate = track_size >= cfg.min_track_hits
    counts["tracks"] = int((track_size > 0).sum())
    counts["candidate_tracks"] = int(candidate.sum())
    counts["fake_tracks"] = int((candidate & ~matched_track).sum())
    maj = track_major & candidate[t_of]
    counts["majority_tracks"] = int(maj.sum())
    counts["duplicate_tracks"] = int(maj.sum() - np.unique(p_of[maj]).size)

    recon = (parts["pt"].to_numpy() > cfg.pt_min) & (nhits >= cfg.min_hits)
    displaced = recon & (parts["radius"].to_numpy() > cfg.displaced_r)
    counts["reconstructable"] = int(recon.sum())
    counts["matched_reconstructable"] = int((recon & matched_part).sum())
    counts["displaced"] = int(displaced.sum())
    counts["matched_displaced"] = int((displaced & matched_part).sum())
    parts["reconstructable"] = recon
    parts["matched"] = matched_part
    parts["track"] = matched_track_of
    return EventMetrics(event.name, counts, (float(dm_w[once].sum()), float(weight.sum())),
                        parts)


# --------------------------------------------------------------------------- summary

def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def _binned(values: np.ndarray, matched: np.ndarray, bins: np.ndarray) -> dict[str, list]:
    total, _ = np.histogram(values, bins=bins)
    hit, _ = np.histogram(values[matched], bins=bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(total > 0, hit / np.maximum(total, 1), np.nan)
    return {"edges": bins.tolist(), "total": total.tolist(), "matched": hit.tolist(),
            "efficiency": [None if np.isnan(v) else float(v) for v in eff]}


def summarize(events: Sequence[EventMetrics], config: MetricsConfig | None = None
              ) -> dict[str, Any]:
    """Aggregate over events (sums of counts, then ratios; NaN where undefined).

    Returns:
        ``track_efficiency, track_efficiency_displaced, fake_rate, duplicate_rate,
        edge_efficiency, edge_purity`` (the gnn stage), ``edges`` (per stage: efficiency,
        purity, edges per event), ``trackml_score``, ``events``, ``counts`` and ``binned``
        (efficiency vs ``pt``, ``eta``, ``radius``: bin edges, totals, matched,
        efficiency with None for empty bins).
    """
    cfg = config or MetricsConfig()
    tot: dict[str, int] = {}
    for ev in events:
        for k, v in ev.counts.items():
            tot[k] = tot.get(k, 0) + v
    n = len(events)
    out: dict[str, Any] = {
        "events": n,
        "track_efficiency": _ratio(tot.get("matched_reconstructable", 0),
                                   tot.get("reconstructable", 0)),
        "track_efficiency_displaced": _ratio(tot.get("matched_displaced", 0),
                                             tot.get("displaced", 0)),
        "fake_rate": _ratio(tot.get("fake_tracks", 0), tot.get("candidate_tracks", 0)),
        "fake_rate_majority": _ratio(tot.get("candidate_tracks", 0)
                                     - tot.get("majority_tracks", 0),
                                     tot.get("candidate_tracks", 0)),
        "duplicate_rate": _ratio(tot.get("duplicate_tracks", 0), tot.get("majority_tracks", 0)),
        "trackml_score": _ratio(sum(e.trackml_weight[0] for e in events),
                                sum(e.trackml_weight[1] for e in events)),
    }
    stages = {}
    for s in EDGE_STAGES:
        if f"{s}_edges" in tot:
            stages[s] = {"efficiency": _ratio(tot[f"{s}_truth_found"], tot[f"{s}_truth"]),
                         "purity": _ratio(tot[f"{s}_true"], tot[f"{s}_edges"]),
                         "edges_per_event": _ratio(tot[f"{s}_edges"], n)}
    out["edges"] = stages
    final = stages.get("gnn", {})
    out["edge_efficiency"] = final.get("efficiency", float("nan"))
    out["edge_purity"] = final.get("purity", float("nan"))
    out["counts"] = tot
    parts = pd.concat([e.particles for e in events if len(e.particles)], ignore_index=True) \
        if any(len(e.particles) for e in events) else pd.DataFrame(
            columns=["pt", "eta", "radius", "nhits", "reconstructable", "matched"])
    enough = parts["nhits"].to_numpy() >= cfg.min_hits
    recon = parts["reconstructable"].to_numpy(bool)
    matched = parts["matched"].to_numpy(bool)
    out["binned"] = {
        "pt": _binned(parts["pt"].to_numpy(float)[enough], matched[enough], PT_BINS),
        "eta": _binned(parts["eta"].to_numpy(float)[recon], matched[recon], ETA_BINS),
        "radius": _binned(parts["radius"].to_numpy(float)[recon], matched[recon], RADIUS_BINS),
    }
    return out


def gnn_edges(edges: np.ndarray, scores: np.ndarray, cut: float) -> np.ndarray:
    """The edges whose GNN score is above ``cut``: ``[2, E] -> [2, E']``."""
    return np.asarray(edges)[:, np.asarray(scores) > cut]


def stage_edges(graph: Mapping[str, np.ndarray], gnn_cut: float) -> dict[str, np.ndarray]:
    """The ``edges`` argument of :func:`evaluate_event` from a pipeline result's graph
    (``build_edges``, ``filter_edges``, ``gnn_scores``; see ``Pipeline.run(keep_graph)``)."""
    kept = graph["filter_edges"]
    return {"build": graph["build_edges"], "filter": kept,
            "gnn": gnn_edges(kept, graph["gnn_scores"], gnn_cut)}
