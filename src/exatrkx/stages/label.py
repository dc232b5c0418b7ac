"""Stage 5: track labels from the edges the GNN keeps.

Two methods (``PipelineConfig.label_method``):

- ``"components"``: connected components of the edges scoring above the cut.
- ``"best_edges"`` (default): first, at every hit, the edges are oriented outwards
  (:func:`~exatrkx.nets.orient_edges`) and an edge is kept only if it is the best-scoring
  edge leaving its inner hit or the best-scoring edge entering its outer hit; then connected
  components. A single wrong edge between two tracks loses to the true edges at both of
  its ends and no longer merges the tracks, while a track's own chain survives (each of its
  links is the best at one end at least).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from exatrkx.nets import orient_edges

LABEL_METHODS = ("best_edges", "components")


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


def best_edges(features: torch.Tensor, edges: torch.Tensor, scores: torch.Tensor
               ) -> torch.Tensor:
    """bool ``[E]``: best edge leaving its inner hit or entering its outer hit.

    Args:
        features: f32 ``[N, 3]`` (for the orientation).
        edges: i64 ``[2, E]``.
        scores: f32 ``[E]``.
    """
    if edges.shape[1] == 0:
        return torch.zeros(0, dtype=torch.bool, device=edges.device)
    oriented = orient_edges(features, edges).cpu().numpy()
    sc = scores.detach().cpu().numpy()
    keep = _best_per_hit(oriented[0], sc) | _best_per_hit(oriented[1], sc)
    return torch.from_numpy(keep).to(edges.device)


def label_event(features: torch.Tensor, edges: torch.Tensor, scores: torch.Tensor,
                cut: float, method: str = "best_edges") -> torch.Tensor:
    """The label stage: track of each hit, ``[N]`` i64, -1 = in no track.

    Args:
        features: f32 ``[N, 3]``.
        edges: i64 ``[2, E]`` (the filter's kept edges).
        scores: f32 ``[E]`` GNN scores.
        cut: keep edges scoring above this.
        method: ``"best_edges"`` or ``"components"`` (see the module docstring).
    """
    if method not in LABEL_METHODS:
        raise ValueError(f"unknown label method {method!r} ({', '.join(LABEL_METHODS)})")
    keep = scores > cut
    edges, scores = edges[:, keep], scores[keep]
    if method == "best_edges":
        edges = edges[:, best_edges(features, edges, scores)]
    e = edges.detach().cpu().numpy()
    labels = components(int(features.shape[0]), e[0], e[1])
    return torch.from_numpy(labels).to(edges.device)
