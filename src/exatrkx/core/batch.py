"""Several events as one disjoint graph: joined tensors with offsets, one pass, split results.

The served models get several events per execution from Triton's dynamic batcher; the
stages run them as one graph whose pieces never touch (:mod:`exatrkx.core.stages`: each
stage takes a list of events, a single event being a list of one):

- hits: event ``e``'s ``n_e`` hits sit in rows ``start_e .. start_e + n_e`` of the joined
  hit tensors (:meth:`Layout.join_hits`);
- edges: event ``e``'s edges, their hit indices shifted by ``start_e``, sit in columns
  ``col_e .. col_e + m_e`` of the joined edge tensor (:meth:`Layout.join_edges`), so no edge
  links hits of two events;
- results are cut back into events by the same offsets (:meth:`Layout.split_hits`,
  :meth:`JoinedEdges.split`).

Blocks: with ``block > 1`` (the nets' layout, :data:`BLOCK_ROWS`) every start is a multiple
of the block and the rows between events are padding: zero hits, and edges from the *sink*
(a block of padding hits after the last event) to itself. A dense layer's result for a row
depends on where the row falls in the matrix library's tiles (MKL computes the last rows of a
matrix that do not fill a tile of 32 rows another way, which changes the last bit of some
scores); with every event starting on a block and every event's rows padded to whole blocks,
each row falls in the same place of a tile alone or in any batch, and the element-wise
kernels see the same vector boundaries. So an event's embedding and scores are bitwise the
same alone and in any batch (tested on the shared events), and its labels identical. A
single event goes through the same layout (a batch of one), in process too. The padding
costs about half a block of rows per event and net.

Nothing here reduces across events: every operation is per hit or per edge, hits keep their
order within their event and edges theirs, so per-hit sums (the GNN's message aggregation)
add the same terms in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

Tensor = torch.Tensor

#: Rows of a block of the nets' layout: a multiple of MKL's AVX-512 sgemm tile (32 rows).
BLOCK_ROWS = 64


def round_up(n: int, block: int) -> int:
    """``n`` rounded up to a multiple of ``block``."""
    return -(-int(n) // block) * block


@dataclass(frozen=True)
class JoinedEdges:
    """The edges of several events in one ``[2, C]`` tensor (see :meth:`Layout.join_edges`).

    Attributes:
        edges: i64 ``[2, C]``: each event's edges shifted to its rows, then padding.
        counts: edges of each event.
        starts: column of each event's first edge.
    """

    edges: Tensor
    counts: tuple[int, ...]
    starts: tuple[int, ...]

    def split(self, values: Tensor) -> list[Tensor]:
        """Per-edge values (``[C, ...]``) cut into events (views)."""
        return [values[s:s + m] for s, m in zip(self.starts, self.counts, strict=True)]


@dataclass(frozen=True)
class Layout:
    """Where each event's hits sit in the joined hit tensors.

    Attributes:
        hits: hits of each event.
        starts: row of each event's first hit.
        rows: rows of the joined tensors (padding and the sink included).
        block: the block size (1: events packed back to back, no padding, no sink).
    """

    hits: tuple[int, ...]
    starts: tuple[int, ...]
    rows: int
    block: int

    @classmethod
    def of(cls, hits: Sequence[int], block: int = BLOCK_ROWS) -> Layout:
        """The layout of events with ``hits`` hits each (a block of ``block`` rows)."""
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        starts, row = [], 0
        for n in hits:
            starts.append(row)
            row += round_up(n, block)
        return cls(tuple(int(n) for n in hits), tuple(starts),
                   row + (block if block > 1 else 0), block)

    @property
    def events(self) -> int:
        return len(self.hits)

    @property
    def sink(self) -> int:
        """The padding hit that padding edges join to itself (``block > 1``)."""
        return self.rows - self.block

    def join_hits(self, tensors: Sequence[Tensor]) -> Tensor:
        """Per-hit tensors (``[n_e, ...]``, one per event) in one tensor, zero padded."""
        if len(tensors) != self.events:
            raise ValueError(f"{len(tensors)} tensors for {self.events} events")
        if not tensors:
            raise ValueError("no events to join")
        if self.block == 1:
            return torch.cat(list(tensors))
        first = tensors[0]
        out = first.new_zeros((self.rows, *first.shape[1:]))
        for tensor, start in zip(tensors, self.starts, strict=True):
            out[start:start + tensor.shape[0]] = tensor
        return out

    def split_hits(self, joined: Tensor) -> list[Tensor]:
        """A joined per-hit tensor cut into events (views)."""
        return [joined[s:s + n] for s, n in zip(self.starts, self.hits, strict=True)]

    def join_edges(self, edges: Sequence[Tensor]) -> JoinedEdges:
        """Edge lists (i64 ``[2, m_e]``, hit indices of their event) in one tensor.

        Each event's hit indices are shifted by its start row; with blocks, each event's
        edges are padded to whole blocks with sink-to-sink edges.
        """
        if len(edges) != self.events:
            raise ValueError(f"{len(edges)} edge lists for {self.events} events")
        pieces: list[Tensor] = []
        starts, counts, col = [], [], 0
        for e, start in zip(edges, self.starts, strict=True):
            m = int(e.shape[1])
            starts.append(col)
            counts.append(m)
            if m:
                pieces.append(e + start if start else e)
            pad = round_up(m, self.block) - m
            if pad:
                pieces.append(torch.full((2, pad), self.sink, dtype=e.dtype, device=e.device))
            col += m + pad
        if pieces:
            joined = torch.cat(pieces, dim=1)
        else:
            device = edges[0].device if edges else None
            joined = torch.zeros((2, 0), dtype=torch.int64, device=device)
        return JoinedEdges(joined, tuple(counts), tuple(starts))


def sub_batches(sizes: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of events grouped in order, each group at most ``budget`` in total size
    (hits); an event larger than the budget forms a group of its own.

    Raises:
        ValueError: a budget below 1.
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    groups: list[list[int]] = []
    total = 0
    for i, size in enumerate(sizes):
        if groups and total + size <= budget:
            groups[-1].append(i)
            total += size
        else:
            groups.append([i])
            total = size
    return groups
