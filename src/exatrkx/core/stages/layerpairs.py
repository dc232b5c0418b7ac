"""Stage 2, the ``layer_pairs`` method: candidate edges between hits of connected layers.

A geometric graph construction in the spirit of the first HEP.TrkX / Exa.TrkX graphs and of
the module maps of ATLAS, at the granularity of detector layers, everything learnt from
simulation (:func:`exatrkx.train.learn_layer_map`, stored in
:class:`~exatrkx.config.LayerMapConfig`):

- the embed stage (``EmbedConfig(kind="layers")``, :class:`LayerEmbedding`) gives each hit
  its layer: the first learnt ``(r, z)`` box that holds it;
- for every learnt layer pair (inner, outer), an inner hit ``a`` is joined to the outer
  layer's hits ``b`` inside a window: ``dphi = phi_b - phi_a`` (wrapped) within
  ``[dphi_lo, dphi_hi]`` and ``du = u_b - u_pred(a)`` within ``[du_lo, du_hi]``, where ``u``
  is the position along the outer layer (z on a barrel layer, r on a disk) and ``u_pred``
  where a straight line from the origin through ``a`` crosses it (:func:`predicted_u`).

The windows are rectangles in ``(phi, u)``: each pair is one k-d tree query in the
Chebyshev norm, in chunks of inner hits. A hit keeps at most ``max_neighbours`` outer hits
(the nearest to its windows' centres), so that, as for the radius build, an event has at
most ``N * max_neighbours`` edges (what the served models' checks and the client's buffers
rely on). Edges are canonical as every build's: ``edges[0] > edges[1]``, unique, sorted.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import nn

from exatrkx.config import LayerMapConfig

#: Inner hits per k-d tree query (bounds the candidate arrays of one query).
CHUNK_HITS = 1 << 15


def layer_geometry(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(barrel [L] bool, position [L])``: a barrel layer (longer in z than in r) sits at
    the centre of its r range, a disk at the centre of its z range (mm)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    barrel = (boxes[:, 3] - boxes[:, 2]) > (boxes[:, 1] - boxes[:, 0])
    pos = np.where(barrel, (boxes[:, 0] + boxes[:, 1]) / 2, (boxes[:, 2] + boxes[:, 3]) / 2)
    return barrel, pos


def layer_reach(boxes: np.ndarray) -> np.ndarray:
    """Distance from the origin (mm) of the nearest point of each layer's box: the order in
    which an outgoing track meets the layers (a layer pair's inner layer comes first)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    z_near = np.where((boxes[:, 2] <= 0) & (boxes[:, 3] >= 0), 0.0,
                      np.minimum(np.abs(boxes[:, 2]), np.abs(boxes[:, 3])))
    return np.hypot(boxes[:, 0], z_near)


def orient_pairs(r: np.ndarray, z: np.ndarray, layer: np.ndarray, a: np.ndarray,
                 b: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(inner, outer)`` of hit pairs: the hit of the layer nearer the origin
    (:func:`layer_reach`) first; in one layer, the hit nearer the origin (ties: the
    smaller index)."""
    reach = layer_reach(boxes)[layer]
    d = r * r + z * z
    first = (reach[b] < reach[a]) | ((reach[b] == reach[a])
                                     & ((d[b] < d[a]) | ((d[b] == d[a]) & (b < a))))
    return np.where(first, b, a), np.where(first, a, b)


def predicted_u(r: np.ndarray, z: np.ndarray, barrel: np.ndarray | bool,
                pos: np.ndarray | float) -> np.ndarray:
    """Where the straight line from the origin through hits ``(r, z)`` crosses a layer: its
    z on a barrel layer at radius ``pos``, its r on a disk at ``z = pos`` (inf when it
    never gets there). ``barrel`` and ``pos`` are per layer or per hit."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        on_barrel = z * pos / r
        on_disk = np.where(z * pos > 0, r * pos / z, np.inf)
    return np.where(barrel, on_barrel, on_disk)


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Angles into ``[-pi, pi)``."""
    return np.remainder(dphi + np.pi, 2 * np.pi) - np.pi


def hit_coordinates(embedding: torch.Tensor) -> tuple[np.ndarray, ...]:
    """``(r mm, phi rad, z mm, layer)`` of a ``[N, 4]`` layer embedding (float64, int64)."""
    e = embedding.detach().cpu().numpy().astype(np.float64)
    return e[:, 0] * 1000.0, e[:, 1] * np.pi, e[:, 2] * 1000.0, np.rint(e[:, 3]).astype(np.int64)


def pair_residuals(r: np.ndarray, phi: np.ndarray, z: np.ndarray, inner: np.ndarray,
                   outer: np.ndarray, outer_barrel: np.ndarray, outer_pos: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(dphi, du)`` of hit pairs (inner -> outer rows; the outer hits' layer geometry per
    pair): what the windows cut on. Training learns the windows from these values."""
    dphi = wrap_phi(phi[outer] - phi[inner])
    u = np.where(outer_barrel, z[outer], r[outer])
    return dphi, u - predicted_u(r[inner], z[inner], outer_barrel, outer_pos)


class LayerEmbedding(nn.Module):
    """The embed stage of ``EmbedConfig(kind="layers")``: ``[N, 3] -> [N, 4]`` = the features
    and the index of the layer whose box holds the hit (-1: none). No weights: the boxes
    come from the config (buffers that are not saved)."""

    def __init__(self, layers: LayerMapConfig) -> None:
        super().__init__()
        self.boxes: torch.Tensor
        self.register_buffer("boxes", torch.tensor(layers.boxes, dtype=torch.float64)
                             .reshape(-1, 4), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = (x[:, 0].to(torch.float64) * 1000.0).unsqueeze(1)
        z = (x[:, 2].to(torch.float64) * 1000.0).unsqueeze(1)
        b = self.boxes
        inside = (r >= b[:, 0]) & (r <= b[:, 1]) & (z >= b[:, 2]) & (z <= b[:, 3])
        found = inside.any(dim=1)
        first = torch.argmax(inside.to(torch.int8), dim=1)
        layer = torch.where(found, first, torch.full_like(first, -1))
        return torch.cat([x, layer.to(x.dtype).unsqueeze(1)], dim=1)


def build_layer_pairs(embedding: torch.Tensor, layers: LayerMapConfig,
                      max_neighbours: int) -> torch.Tensor:
    """The ``layer_pairs`` build (see the module docstring).

    Args:
        embedding: f32 ``[N, 4]`` from :class:`LayerEmbedding`.
        layers: the learnt layer map.
        max_neighbours: each hit keeps at most this many of the outer hits in its windows,
            those nearest the windows' centres (Chebyshev distance in window units, ties
            by the smaller index), so that ``E <= N * max_neighbours`` as for every build.

    Returns:
        i64 ``[2, E]`` on the embedding's device, ``edges[0] > edges[1]``, unique, sorted.
    """
    device = embedding.device
    n = int(embedding.shape[0])
    if embedding.ndim != 2 or embedding.shape[1] != 4:
        raise ValueError(f"the layer_pairs build needs a [N, 4] layer embedding, got "
                         f"{list(embedding.shape)}")
    empty = torch.zeros((2, 0), dtype=torch.int64, device=device)
    if n < 2 or not layers.pairs:
        return empty
    r, phi, z, layer = hit_coordinates(embedding)
    barrel, pos = layer_geometry(np.asarray(layers.boxes))
    order = np.argsort(layer, kind="stable")
    bounds = np.searchsorted(layer[order], np.arange(len(layers.boxes) + 1))
    members = [order[bounds[i]:bounds[i + 1]] for i in range(len(layers.boxes))]
    found = []
    for inner, outer, plo, phi_hi, ulo, uhi in layers.pairs:
        a_hits, b_hits = members[inner], members[outer]
        if a_hits.size == 0 or b_hits.size == 0:
            continue
        found.append(_pair_edges(r, phi, z, a_hits, b_hits, bool(barrel[outer]),
                                 float(pos[outer]), (plo, phi_hi, ulo, uhi)))
    if not found:
        return empty
    ia, ib, dist = (np.concatenate([f[i] for f in found]) for i in range(3))
    ia, ib = _nearest(ia, ib, dist, n, int(max_neighbours))
    key = np.unique(np.maximum(ia, ib) * n + np.minimum(ia, ib))
    edges = np.stack([key // n, key % n])
    return torch.from_numpy(edges).to(device)


def pair_candidate_counts(embedding: torch.Tensor, layers: LayerMapConfig) -> np.ndarray:
    """Candidates each layer pair of ``layers`` finds in one event, i64 ``[P]`` (before the
    per-hit bound; pairs found by two layer pairs count for both). What the learning of
    the map weighs against the truth pairs a layer pair holds."""
    r, phi, z, layer = hit_coordinates(embedding)
    barrel, pos = layer_geometry(np.asarray(layers.boxes))
    out = np.zeros(len(layers.pairs), np.int64)
    for i, (inner, outer, *window) in enumerate(layers.pairs):
        a_hits, b_hits = np.flatnonzero(layer == inner), np.flatnonzero(layer == outer)
        if a_hits.size and b_hits.size:
            out[i] = _pair_edges(r, phi, z, a_hits, b_hits, bool(barrel[outer]),
                                 float(pos[outer]), tuple(window))[0].size  # type: ignore[arg-type]
    return out


def _nearest(ia: np.ndarray, ib: np.ndarray, dist: np.ndarray, n: int, k: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Keep each inner hit's ``k`` candidates of smallest ``dist`` (ties: smaller outer
    index); only hits with more than ``k`` are sorted."""
    crowded = np.bincount(ia, minlength=n)[ia] > k
    if not crowded.any():
        return ia, ib
    ca, cb, cd = ia[crowded], ib[crowded], dist[crowded]
    order = np.lexsort((cb, cd, ca))
    ca, cb = ca[order], cb[order]
    first = np.searchsorted(ca, ca, side="left")
    rank = np.arange(ca.size) - first
    keep = rank < k
    return (np.concatenate([ia[~crowded], ca[keep]]),
            np.concatenate([ib[~crowded], cb[keep]]))


def _pair_edges(r: np.ndarray, phi: np.ndarray, z: np.ndarray, a_hits: np.ndarray,
                b_hits: np.ndarray, barrel: bool, pos: float,
                window: tuple[float, float, float, float]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inner hits, outer hits, distance in window units)`` of one layer pair."""
    plo, phi_hi, ulo, uhi = window
    half_phi = max((phi_hi - plo) / 2, 1e-12)
    half_u = max((uhi - ulo) / 2, 1e-12)
    # outer hits in window units; copies turned by -+2 pi cover the wrap at phi = +-pi
    u_b = z[b_hits] if barrel else r[b_hits]
    reach = max(abs(plo), abs(phi_hi))
    lo_edge = phi[b_hits] < -np.pi + reach
    hi_edge = phi[b_hits] > np.pi - reach
    b_ext = np.concatenate([b_hits, b_hits[lo_edge], b_hits[hi_edge]])
    phi_b = np.concatenate([phi[b_hits], phi[b_hits][lo_edge] + 2 * np.pi,
                            phi[b_hits][hi_edge] - 2 * np.pi])
    u_ext = np.concatenate([u_b, u_b[lo_edge], u_b[hi_edge]])
    tree_b = cKDTree(np.stack([phi_b / half_phi, u_ext / half_u], axis=1))
    pred = predicted_u(r[a_hits], z[a_hits], barrel, pos)
    centre = np.stack([(phi[a_hits] + (plo + phi_hi) / 2) / half_phi,
                       (pred + (ulo + uhi) / 2) / half_u], axis=1)
    ok = np.isfinite(centre).all(axis=1)
    a_hits, centre = a_hits[ok], centre[ok]
    out_a, out_b, out_d = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for start in range(0, a_hits.size, CHUNK_HITS):
        tree_a = cKDTree(centre[start:start + CHUNK_HITS])
        m = tree_a.sparse_distance_matrix(tree_b, 1.0, p=np.inf, output_type="ndarray")
        ia = a_hits[start:start + CHUNK_HITS][m["i"]]
        ib = b_ext[m["j"]]
        keep = ia != ib
        out_a.append(ia[keep])
        out_b.append(ib[keep])
        out_d.append(m["v"][keep])
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_d)
