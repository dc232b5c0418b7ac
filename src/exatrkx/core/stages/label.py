"""Stage 5: track labels from the edges the GNN keeps.

Methods (``PipelineConfig.label_method``); edges are first cut on the GNN score:

- ``"components"``: connected components of the edges above the cut.
- ``"best_outer"`` (default): the edges are oriented outwards
  (:func:`~exatrkx.core.nets.orient_edges`) and every hit keeps only its best-scoring edge to an
  outer hit; then connected components. Two tracks that start close together (a common
  vertex, a narrow jet) can no longer be merged by one wrong edge as long as each hit's
  own continuation scores higher: every hit follows one way out.
- ``"best_inner"``: the same with every hit's best edge to an inner hit.
- ``"best_both"``: an edge stays when it is its inner hit's best edge outwards or its outer
  hit's best edge inwards. A hit whose best outward edge skips a layer (a double hit, a
  missing hit) keeps the skipped hits attached through their own best inward edges.

The training chooses the method and the cut on validation events. Last, tracks whose
fitted pT is measurably below ``SelectionConfig.min_pt`` lose their labels
(:mod:`exatrkx.core.stages.select`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from exatrkx.config import LABEL_METHODS, LabelMethod, SelectionConfig
from exatrkx.core.batch import Layout
from exatrkx.core.features import xyz_from_features
from exatrkx.core.nets import orient_edges
from exatrkx.core.stages.select import select_tracks


def components(num_hits: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Labels from kept edges (numpy): int64 ``[num_hits]``.

    A hit in no edge gets -1. Components are numbered 0..T-1 in the order of their
    smallest hit index, so the labels depend only on the edge set.
    """
    labels = np.full(num_hits, -1, dtype=np.int64)
    if num_hits == 0 or src.size == 0:
        return labels
    graph = coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)),
                       shape=(num_hits, num_hits)).tocsr()
    _, comp = connected_components(graph, directed=False)
    used = np.zeros(num_hits, dtype=bool)
    used[src] = True
    used[dst] = True
    hits = np.flatnonzero(used)
    comp_used = comp[hits]
    # first occurrence in ascending hit order = the component's smallest hit
    uniq, first = np.unique(comp_used, return_index=True)
    order = np.empty(uniq.size, dtype=np.int64)
    order[np.argsort(first, kind="stable")] = np.arange(uniq.size)
    remap = np.zeros(int(comp.max()) + 1, dtype=np.int64)
    remap[uniq] = order
    labels[hits] = remap[comp_used]
    return labels


def label_hits(num_hits: int, edges: torch.Tensor, scores: torch.Tensor,
               cut: float) -> torch.Tensor:
    """Connected components of the edges with ``score > cut``.

    Args:
        num_hits: N.
        edges: i64 ``[2, E]``.
        scores: f32 ``[E]``.
        cut: keep edges scoring above this.

    Returns:
        i64 ``[N]`` on the edges' device: track 0..T-1 numbered by each track's smallest
        hit index; -1 for hits in no kept edge (unassigned, never a one-hit track).
    """
    keep = (scores > cut).cpu().numpy()
    e = edges.detach().cpu().numpy()[:, keep]
    labels = components(int(num_hits), e[0], e[1])
    return torch.from_numpy(labels).to(edges.device)


def _best_per_hit(hit: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """bool ``[E]``: the edge is the best-scoring one of its ``hit`` (ties: the first)."""
    order = np.lexsort((-scores, hit))
    first = np.ones(order.size, dtype=bool)
    first[1:] = hit[order][1:] != hit[order][:-1]
    best = np.zeros(scores.size, dtype=bool)
    best[order[first]] = True
    return best


def best_edges(features: torch.Tensor, edges: torch.Tensor, scores: torch.Tensor,
               end: str = "outer") -> torch.Tensor:
    """bool ``[E]``: the edge is its inner hit's best edge outwards (``end="outer"``) or its
    outer hit's best edge inwards (``end="inner"``).

    Args:
        features: f32 ``[N, 3]`` (for the orientation).
        edges: i64 ``[2, E]``.
        scores: f32 ``[E]``.
        end: ``"outer"`` or ``"inner"``.
    """
    if edges.shape[1] == 0:
        return torch.zeros(0, dtype=torch.bool, device=edges.device)
    oriented = orient_edges(features, edges).cpu().numpy()
    hit = oriented[0] if end == "outer" else oriented[1]
    keep = _best_per_hit(hit, scores.detach().cpu().numpy())
    return torch.from_numpy(keep).to(edges.device)


def label_event(features: torch.Tensor, edges: torch.Tensor, scores: torch.Tensor,
                cut: float, method: LabelMethod = "best_outer",
                selection: SelectionConfig | None = None) -> torch.Tensor:
    """The label stage: track of each hit, ``[N]`` i64, -1 = in no track.

    Args:
        features: f32 ``[N, 3]``.
        edges: i64 ``[2, E]`` (the filter's kept edges).
        scores: f32 ``[E]`` GNN scores.
        cut: keep edges scoring above this.
        method: one of :data:`LABEL_METHODS` (see the module docstring).
        selection: minimum fitted pT of a reported track; None reports every track.
    """
    if method not in LABEL_METHODS:
        raise ValueError(f"unknown label method {method!r} ({', '.join(LABEL_METHODS)})")
    keep = scores > cut
    edges, scores = edges[:, keep], scores[keep]
    if method == "best_both":
        edges = edges[:, best_edges(features, edges, scores, "outer")
                      | best_edges(features, edges, scores, "inner")]
    elif method != "components":
        edges = edges[:, best_edges(features, edges, scores, method.removeprefix("best_"))]
    e = edges.detach().cpu().numpy()
    labels = components(int(features.shape[0]), e[0], e[1])
    if selection is not None and selection.min_pt > 0 and e.size:
        xy = xyz_from_features(features.detach().cpu().numpy())[:, :2]
        labels = select_tracks(xy, labels, selection.min_pt, selection.min_sagitta,
                               selection.field)
    return torch.from_numpy(labels).to(edges.device)


def label_events(features: Sequence[torch.Tensor], edges: Sequence[torch.Tensor],
                 scores: Sequence[torch.Tensor], cut: float,
                 method: LabelMethod = "best_outer",
                 selection: SelectionConfig | None = None) -> list[torch.Tensor]:
    """The label stage on several events at once: :func:`label_event` of their disjoint
    graph, then each event's tracks renumbered from 0.

    Every step of :func:`label_event` is per edge, per hit or per track, and a track never
    leaves its event; tracks are numbered in the order of their smallest hit, so an event's
    tracks form one run of numbers in the joined graph, which its smallest label shifts to 0.
    Each event gets exactly the labels it gets alone.

    Args:
        features: f32 ``[N_e, 3]`` per event.
        edges: i64 ``[2, E_e]`` per event (hit indices of its event).
        scores: f32 ``[E_e]`` per event.
        cut, method, selection: as :func:`label_event`.
    """
    if not features:
        return []
    layout = Layout.of([int(f.shape[0]) for f in features], block=1)
    joined = layout.join_edges(edges)
    labels = label_event(layout.join_hits(list(features)), joined.edges,
                         torch.cat(list(scores)) if scores else torch.zeros(0), cut, method,
                         selection)
    out = []
    for part in layout.split_hits(labels):
        used = part >= 0
        if bool(used.any()):
            part = torch.where(used, part - part[used].min(), part)
        out.append(part)
    return out
