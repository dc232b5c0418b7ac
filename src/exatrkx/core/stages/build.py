"""Stage 2: build candidate edges between hits close in the embedding space (FRNN).

The answer is defined exactly, independent of the backend:

1. the distance of two hits is ``d2 = sum_c (x_i[c] - x_j[c])**2`` in float32, summed
   column by column in order (:func:`exact_d2`; bitwise the same on CPU and GPU);
2. every hit ``i`` keeps its ``k`` nearest other hits with ``d2 <= radius**2`` (float32),
   nearest first, ties by the smaller hit index;
3. the edge set is the union of both directions, written ``(max, min)`` (so
   ``edges[0] > edges[1]``), unique, sorted lexicographically; no self loops.

A backend only proposes candidates within a slightly enlarged radius, by its own
(approximate) distance: all pairs (kdtree on sparse graphs), or the ``k + slack`` nearest
of each hit (kdtree on dense graphs, torch). The shared steps 1-2 then choose from them.
When a hit's candidate list is full and its k-th chosen distance comes within the rounding
tolerance of the worst candidate (many ties), the candidates may be incomplete: the kdtree
asks again for four times as many candidates of that hit (until it has them all), the torch
backend recomputes it exactly against all hits. So both backends return the same edges.

Rounding: the kdtree's float64 distances of float32 points differ from step 1's float32 sums
by a small *relative* error (:data:`KDTREE_REL_TOLERANCE` per dimension); the torch
backend's ``|a|^2 + |b|^2 - 2ab`` has an *absolute* error of the order of the points'
squared norms (:func:`_tolerance`).

Memory is bounded for any number of hits: the kdtree is queried for
``CHUNK_ELEMENTS // (k + slack)`` hits at a time and the torch backend computes
``CHUNK_ELEMENTS`` distances at a time. The kdtree uses as many threads as torch does.

Backends: ``"kdtree"`` (``scipy.spatial.cKDTree``, CPU), ``"torch"`` (chunked matmul
distances + ``topk``, any device); ``"auto"`` = kdtree for CPU tensors, torch otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree

#: Extra candidates per hit beyond k, so that the exact selection rarely needs a recompute.
MIN_SLACK = 8
#: Distance-matrix elements per chunk of the torch backend (CPU; GPUs take 16x more).
CHUNK_ELEMENTS = 1 << 22
#: The kdtree backend estimates the neighbour density on about this many hits ...
DENSITY_SAMPLE = 64
#: ... and switches from all pairs to k-nearest queries above this many times k.
DENSE_FACTOR = 2.0
#: Bound on |float32 sum - float64 distance| / distance, per dimension, with a factor 4 of
#: safety (float32 unit roundoff 2**-24 for the difference, the square and each sum).
KDTREE_REL_TOLERANCE = 4.0 * 2.0 ** -24
#: Each re-query of a hit whose candidates may be incomplete asks for this many times more.
REQUERY_FACTOR = 4
#: Hits from which the k-d tree's queries use torch's thread count as workers; smaller
#: events query in one thread (starting threads cost more than they save there: 4.5 against
#: 2.5 ms per 1.3k-hit event with two).
PARALLEL_QUERY_HITS = 20_000


def empty_edges(device: torch.device | str = "cpu") -> torch.Tensor:
    """An empty edge list, i64 ``[2, 0]``."""
    return torch.zeros((2, 0), dtype=torch.int64, device=device)


def exact_d2(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """Squared distances of pairs, float32 ``[C]``, summed column by column.

    Only elementwise operations: the same bits on every device and backend.
    """
    diff = x.index_select(0, i) - x.index_select(0, j)
    sq = diff * diff
    d2 = sq[:, 0].contiguous()
    for c in range(1, x.shape[1]):
        d2 = d2 + sq[:, c]
    return d2


def _float32_square(radius: float) -> float:
    r = np.float32(radius)
    return float(r * r)


def _tolerance(x: torch.Tensor, r2: float) -> float:
    """Bound on |approximate - exact| squared distance, with a wide safety factor."""
    m2 = float((x * x).sum(dim=1).max()) if x.shape[0] else 0.0
    return 4e-6 * (x.shape[1] + 2) * (m2 + r2) + 1e-30


# --------------------------------------------------------------------------- backends

#: ``(i, j, full, worst)``: directed candidate pairs (no self pairs), and per hit ``full``
#: (bool ``[N]``: the backend returned its maximum, so more may lie within the radius) and
#: ``worst`` (``[N]``: the backend's d2 of its last candidate).
_Candidates = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _torch_candidates(x: torch.Tensor, r2_cand: float, kq: int) -> _Candidates:
    """Directed candidates from matmul distances and ``topk``, chunked over hits."""
    n = x.shape[0]
    kq = min(kq, n)
    sq = (x * x).sum(dim=1)
    step = max(1, (CHUNK_ELEMENTS if x.device.type == "cpu" else CHUNK_ELEMENTS << 4) // n)
    out_i, out_j, fulls, worsts = [], [], [], []
    for start in range(0, n, step):
        xs = x[start:start + step]
        d2 = (sq[start:start + step, None] + sq[None, :]) - 2.0 * (xs @ x.t())
        vals, idx = torch.topk(d2, kq, dim=1, largest=False, sorted=False)
        rows = torch.arange(start, start + xs.shape[0], device=x.device)[:, None].expand_as(idx)
        ok = (vals <= r2_cand) & (idx != rows)
        out_i.append(rows[ok])
        out_j.append(idx[ok])
        worst = vals.max(dim=1).values
        worsts.append(worst)
        fulls.append((worst <= r2_cand) if kq < n else torch.zeros_like(worst, dtype=torch.bool))
    return torch.cat(out_i), torch.cat(out_j), torch.cat(fulls), torch.cat(worsts)


# --------------------------------------------------------------------------- exact selection

def _order(i: torch.Tensor, j: torch.Tensor, d2: torch.Tensor, n: int) -> torch.Tensor:
    """Permutation sorting pairs by ``(i, d2, j)``.

    ``d2 >= 0``, so its int32 bit pattern orders like its value. Up to 2**16 hits the
    three fields pack into one unique int64 key; beyond, two stable sorts.
    """
    bits = d2.view(torch.int32).to(torch.int64)
    if n <= 1 << 16:
        return torch.sort((i << 47) | (bits << 16) | j).indices
    order = torch.sort(j, stable=True).indices
    key = i.index_select(0, order) * (1 << 31) + bits.index_select(0, order)
    return order.index_select(0, torch.sort(key, stable=True).indices)


def _take(mask: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    idx = torch.nonzero(mask).squeeze(1)
    return [t.index_select(0, idx) for t in tensors]


def _select_inside(i: torch.Tensor, j: torch.Tensor, d2: torch.Tensor, n: int, k: int,
                   r2: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the ``k`` nearest of each hit among directed pairs already within the radius.

    Returns:
        ``(i, j, kth)``: the chosen directed pairs (in no particular order) and, per hit,
        f64 ``[N]`` the d2 of its k-th choice, or ``r2`` when it has fewer than k.
    """
    kth = torch.full((n,), r2, dtype=torch.float64, device=i.device)
    if i.numel() == 0:
        return i, j, kth
    crowded = torch.bincount(i, minlength=n).index_select(0, i) >= k
    if not bool(crowded.any()):
        return i, j, kth
    ci, cj, cd = _take(crowded, i, j, d2)
    order = _order(ci, cj, cd, n)
    ci, cj, cd = ci.index_select(0, order), cj.index_select(0, order), cd.index_select(0, order)
    counts = torch.bincount(ci, minlength=n)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(ci.numel(), device=i.device) - starts.index_select(0, ci)
    last_i, last_d = _take(rank == k - 1, ci, cd)
    kth[last_i] = last_d.to(torch.float64)
    ci, cj = _take(rank < k, ci, cj)
    ei, ej = _take(~crowded, i, j)
    return torch.cat([ei, ci]), torch.cat([ej, cj]), kth


def _select(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor, r2: float, k: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``k`` nearest candidates of each hit within ``r2``, ties by the smaller index.

    Returns:
        see :func:`_select_inside`.
    """
    d2 = exact_d2(x, i, j)
    i, j, d2 = _take(d2 <= torch.tensor(r2, dtype=torch.float32, device=x.device), i, j, d2)
    return _select_inside(i, j, d2, x.shape[0], k, r2)


def _select_undirected(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, r2: float, k: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_select` for complete undirected candidates (each pair listed once).

    A pair within the radius is kept when one of its hits has at most ``k`` neighbours;
    pairs of two crowded hits need the directed selection of one of them.
    """
    n = x.shape[0]
    d2 = exact_d2(x, a, b)
    a, b, d2 = _take(d2 <= torch.tensor(r2, dtype=torch.float32, device=x.device), a, b, d2)
    crowded_hit = (torch.bincount(a, minlength=n) + torch.bincount(b, minlength=n)) > k
    ca, cb = crowded_hit.index_select(0, a), crowded_hit.index_select(0, b)
    both = ca & cb
    if not bool(both.any()):
        return a, b
    # directed candidates of the crowded hits: each of their pairs, seen from them
    a1, b1, d1 = _take(ca, a, b, d2)
    a2, b2, d2_ = _take(cb, a, b, d2)
    si, sj, _ = _select_inside(torch.cat([a1, b2]), torch.cat([b1, a2]),
                               torch.cat([d1, d2_]), n, k, r2)
    ea, eb = _take(~both, a, b)
    return torch.cat([ea, si]), torch.cat([eb, sj])


def _kdtree_edges(x: torch.Tensor, r2: float, k: int, kq: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 1-2 with a k-d tree in float64 (directed or undirected pairs, not yet unique).

    Sparse graphs (estimated on a sample of hits) use ``query_pairs``: every pair within
    the radius once, complete. Dense ones query the ``kq`` nearest of each hit, a chunk of
    hits at a time, and ask again with more candidates for hits whose k-th choice is not
    clearly nearer than their last candidate.
    """
    pts = x.detach().cpu().numpy().astype(np.float64)
    n, dim = pts.shape
    rel = KDTREE_REL_TOLERANCE * (dim + 2)
    r_cand = float(np.sqrt(r2 / (1.0 - rel))) * (1 + 1e-12) + 1e-30
    workers = max(1, torch.get_num_threads()) if n >= PARALLEL_QUERY_HITS else 1
    tree = cKDTree(pts)
    sample = pts[:: max(1, n // DENSITY_SAMPLE)]
    mean_count = float(np.mean(tree.query_ball_point(sample, r_cand, return_length=True,
                                                     workers=workers)))
    if mean_count <= DENSE_FACTOR * min(kq, n):
        pairs = tree.query_pairs(r_cand, output_type="ndarray").astype(np.int64)
        return _select_undirected(x, torch.from_numpy(np.ascontiguousarray(pairs[:, 1])),
                                  torch.from_numpy(np.ascontiguousarray(pairs[:, 0])), r2, k)
    out_i: list[torch.Tensor] = []
    out_j: list[torch.Tensor] = []
    step = max(1, CHUNK_ELEMENTS // kq)
    for start in range(0, n, step):
        rows = np.arange(start, min(n, start + step), dtype=np.int64)
        kk = kq
        while rows.size:
            kk = min(kk, n)
            dist, idx = tree.query(pts[rows], k=kk, distance_upper_bound=r_cand,
                                   workers=workers)
            dist, idx = dist.reshape(rows.size, kk), idx.reshape(rows.size, kk)
            own = np.broadcast_to(rows[:, None], idx.shape)
            ok = (idx < n) & (idx != own)
            si, sj, kth = _select(x, torch.from_numpy(own[ok]),
                                  torch.from_numpy(idx[ok].astype(np.int64)), r2, k)
            # a full hit may miss a neighbour unless its k-th choice (or r2) is clearly
            # nearer than its last candidate
            full = np.isfinite(dist[:, -1]) & (kk < n)
            worst = dist[:, -1] ** 2 * (1.0 - rel)
            unsafe = full & (kth.numpy()[rows] >= worst)
            if unsafe.any():
                flag = torch.zeros(n, dtype=torch.bool)
                flag[torch.from_numpy(rows[unsafe])] = True
                keep = ~flag.index_select(0, si)
                si, sj = si[keep], sj[keep]
            out_i.append(si)
            out_j.append(sj)
            rows = rows[unsafe]
            kk *= REQUERY_FACTOR
    return torch.cat(out_i), torch.cat(out_j)


def _recompute_rows(x: torch.Tensor, rows: torch.Tensor, r2: float, k: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact selection of ``rows`` against every hit (used where candidates may be short)."""
    n = x.shape[0]
    step = max(1, CHUNK_ELEMENTS // n)
    out_i, out_j = [], []
    all_j = torch.arange(n, device=x.device)
    for start in range(0, rows.numel(), step):
        r = rows[start:start + step]
        ii = r.repeat_interleave(n)
        jj = all_j.repeat(r.numel())
        ok = ii != jj
        si, sj, _ = _select(x, ii[ok], jj[ok], r2, k)
        out_i.append(si)
        out_j.append(sj)
    return torch.cat(out_i), torch.cat(out_j)


def build_edges(embedding: torch.Tensor, radius: float, max_neighbours: int,
                backend: str = "auto") -> torch.Tensor:
    """Fixed-radius nearest-neighbour graph in the embedding space.

    Args:
        embedding: f32 ``[N, D]``.
        radius: neighbours need ``d <= radius`` (compared as float32 squares).
        max_neighbours: each hit keeps at most this many (the nearest, ties by index).
        backend: ``"kdtree"``, ``"torch"`` or ``"auto"``.

    Returns:
        i64 ``[2, E]`` on the embedding's device, ``edges[0] > edges[1]``, unique, sorted by
        ``(edges[0], edges[1])``. Same edges for every backend (see the module docstring).
    """
    if backend == "auto":
        backend = "kdtree" if embedding.device.type == "cpu" else "torch"
    if backend not in ("kdtree", "torch"):
        raise ValueError(f"unknown FRNN backend {backend!r} (kdtree, torch or auto)")
    if embedding.ndim != 2:
        raise ValueError(f"embedding must be [N, D], got {list(embedding.shape)}")
    device = embedding.device
    n = int(embedding.shape[0])
    k = int(max_neighbours)
    if n < 2 or k < 1 or not radius >= 0:
        return empty_edges(device)
    with torch.inference_mode():
        x = embedding.detach().to(torch.float32).contiguous()
        r2 = _float32_square(radius)
        kq = k + 1 + max(MIN_SLACK, k // 8)
        if backend == "kdtree":
            si, sj = _kdtree_edges(x.cpu(), r2, k, kq)
            si, sj = si.to(device), sj.to(device)
        else:
            tol2 = _tolerance(x, r2)
            ci, cj, full, worst = _torch_candidates(x, r2 + tol2, kq)
            si, sj, kth = _select(x, ci, cj, r2, k)
            # a full hit may miss a neighbour unless its k-th choice (or r2) is clearly
            # nearer than its worst candidate; recompute those exactly
            unsafe = full & (kth >= worst.to(torch.float64) - tol2)
            if bool(unsafe.any()):
                drop = unsafe.index_select(0, si)
                ri, rj = _recompute_rows(x, torch.nonzero(unsafe).squeeze(1), r2, k)
                si = torch.cat([si[~drop], ri])
                sj = torch.cat([sj[~drop], rj])
        if si.numel() == 0:
            return empty_edges(device)
        key = torch.maximum(si, sj) * n + torch.minimum(si, sj)
        key = torch.unique(key, sorted=True)
        return torch.stack([key // n, key % n])


def build_events(embeddings: Sequence[torch.Tensor], radius: float, max_neighbours: int,
                 backend: str = "auto") -> list[torch.Tensor]:
    """:func:`build_edges` of several events, each searched on its own: no edge can join
    hits of two events, and each event's edges are those it gets alone."""
    return [build_edges(e, radius, max_neighbours, backend) for e in embeddings]
