"""Stage 5: track labels = connected components of the edges the GNN keeps."""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


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
