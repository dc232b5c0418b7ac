"""Stage 3: score candidate edges with an MLP on both endpoints' features; keep the good."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from exatrkx.config import FilterConfig
from exatrkx.core.batch import BLOCK_ROWS, Layout, round_up
from exatrkx.core.nets import (
    EDGE_DIM,
    HIT_DIM,
    PairMLP,
    edge_geometry,
    encode_hits,
    orient_edges,
    pair_slots,
)

#: Edges scored per forward call; bounds the memory of huge graphs (whole blocks).
DEFAULT_CHUNK = 1 << 18


class FilterNet(nn.Module):
    """MLP on ``[h_inner, h_outer, geometry]`` -> one logit per edge.

    ``h`` is :func:`~exatrkx.core.nets.encode_hits` of each end (phi as cos and sin), the edge
    oriented outwards (:func:`~exatrkx.core.nets.orient_edges`) and ``geometry`` its
    :func:`~exatrkx.core.nets.edge_geometry` (dr, dphi, dz, deta), so the score does not depend
    on how the edge is written nor jump at phi = +-pi.

    Hidden blocks are Linear(+LayerNorm)+activation (see :class:`FilterConfig`). The first
    Linear is applied per hit before the gather (same result, less work; see
    :class:`~exatrkx.core.nets.PairMLP`).
    """

    def __init__(self, config: FilterConfig | None = None) -> None:
        super().__init__()
        cfg = config or FilterConfig()
        self.net = PairMLP(HIT_DIM, EDGE_DIM, cfg.hidden, 1, cfg.layers, cfg.activation,
                           cfg.norm)

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """``x`` f32 ``[N, 3]``, ``edges`` i64 ``[2, E]`` -> logits f32 ``[E]``."""
        edges = orient_edges(x, edges)
        slot_src, slot_dst = pair_slots(edges)
        return self.net(encode_hits(x), slot_src, slot_dst,
                        edge_geometry(x, edges)).squeeze(-1)


def filter_events(model: nn.Module, features: Sequence[torch.Tensor],
                  edges: Sequence[torch.Tensor], cut: float, chunk: int = DEFAULT_CHUNK
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Score the edges of several events in one pass (one disjoint graph,
    :mod:`exatrkx.core.batch`) and keep those with ``sigmoid(logit) > cut``.

    Args:
        model: a :class:`FilterNet` (plain or scripted).
        features: f32 ``[N_e, 3]`` per event.
        edges: i64 ``[2, E_e]`` per event (hit indices of its event).
        cut: score threshold.
        chunk: edges per forward call (rounded up to whole blocks).

    Returns:
        Per event ``(kept [2, E'_e] i64, scores [E_e] f32)``; kept edges keep their order.
    """
    chunk = round_up(max(chunk, 1), BLOCK_ROWS)
    with torch.inference_mode():
        layout = Layout.of([int(f.shape[0]) for f in features])
        joined = layout.join_edges(edges)
        n = int(joined.edges.shape[1])
        if n == 0:
            return [(e, torch.zeros(0, dtype=torch.float32, device=e.device)) for e in edges]
        x = layout.join_hits([f.to(torch.float32) for f in features])
        if n <= chunk:
            scores = torch.sigmoid(model(x, joined.edges))
        else:
            scores = torch.cat([torch.sigmoid(model(x, joined.edges[:, s:s + chunk]))
                                for s in range(0, n, chunk)])
        return [(e[:, s > cut], s) for e, s in zip(edges, joined.split(scores), strict=True)]


def filter_edges(model: nn.Module, features: torch.Tensor, edges: torch.Tensor, cut: float,
                 chunk: int = DEFAULT_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Score one event's edges and keep those with ``sigmoid(logit) > cut`` (a batch of one
    of :func:`filter_events`).

    Args:
        model: a :class:`FilterNet` (plain or scripted).
        features: f32 ``[N, 3]``.
        edges: i64 ``[2, E]``.
        cut: score threshold.
        chunk: edges per forward call.

    Returns:
        ``(kept [2, E'] i64, scores [E] f32)``; kept edges keep their order.
    """
    return filter_events(model, [features], [edges], cut, chunk)[0]
