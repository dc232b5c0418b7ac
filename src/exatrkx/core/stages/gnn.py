"""Stage 4: classify the filtered edges with an interaction network."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from exatrkx.config import GNNConfig
from exatrkx.core.batch import Layout
from exatrkx.core.nets import (
    EDGE_DIM,
    HIT_DIM,
    PairMLP,
    edge_geometry,
    encode_hits,
    mlp,
    orient_edges,
    pair_slots,
)


class InteractionGNN(nn.Module):
    """Interaction-network edge classifier.

    - node encoder: MLP on the encoded hit features (:func:`~exatrkx.core.nets.encode_hits`,
      phi as cos and sin) -> ``h`` ``[N, H]``;
    - edge encoder: MLP on ``[x_inner, x_outer, geometry]`` -> ``e`` ``[E, H]``, the edge
      oriented outwards (:func:`~exatrkx.core.nets.orient_edges`) and ``geometry`` its
      :func:`~exatrkx.core.nets.edge_geometry`;
    - ``steps`` iterations (shared weights) of
      ``e += edge_net([h_src, h_dst, e])`` and
      ``h += node_net([h, sum of e over edges into the hit, sum over edges out of it])``
      (the graph is used as undirected: every edge updates both of its hits);
    - output head: MLP on ``[h_src, h_dst, e]`` -> one logit per edge.

    Node-level MLPs have LayerNorm + activation in their blocks; edge-level ones (edge
    encoder, edge net, head) only with ``config.edge_norm`` -- LayerNorm on E x H
    tensors is the largest cost of a CPU forward. Encoders end in (LayerNorm +)
    activation, the residual nets in a plain Linear. Aggregation uses ``index_add_``.
    """

    def __init__(self, config: GNNConfig | None = None) -> None:
        super().__init__()
        cfg = config or GNNConfig()
        hid, nl, act, en = cfg.hidden, cfg.mlp_layers, cfg.activation, cfg.edge_norm
        self.steps = int(cfg.steps)
        self.hidden = int(hid)
        self.node_encoder = mlp(HIT_DIM, hid, hid, nl, act, norm=True, out_act=True)
        self.edge_encoder = PairMLP(HIT_DIM, EDGE_DIM, hid, hid, nl, act, norm=en,
                                    out_act=True)
        self.edge_net = PairMLP(hid, hid, hid, hid, nl, act, norm=en)
        self.node_net = mlp(3 * hid, hid, hid, nl, act, norm=True)
        self.output = PairMLP(hid, hid, hid, 1, nl, act, norm=en)

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """``x`` f32 ``[N, 3]``, ``edges`` i64 ``[2, E]`` -> logits f32 ``[E]``."""
        n = x.shape[0]
        edges = orient_edges(x, edges)
        slot_src, slot_dst = pair_slots(edges)
        # rows of the [2N, H] message sum: 2v = into hit v (v is the dst), 2v + 1 = out of
        # it (v is the src); viewed as [N, 2H] it is [incoming, outgoing] per hit
        into, out_of = 2 * edges[1], 2 * edges[0] + 1
        hits = encode_hits(x)
        h = self.node_encoder(hits)
        e = self.edge_encoder(hits, slot_src, slot_dst, edge_geometry(x, edges))
        for _ in range(self.steps):
            e = e + self.edge_net(h, slot_src, slot_dst, e)
            agg = torch.zeros(2 * n, self.hidden, dtype=e.dtype, device=e.device)
            agg.index_add_(0, into, e)
            agg.index_add_(0, out_of, e)
            h = h + self.node_net(torch.cat([h, agg.view(n, 2 * self.hidden)], dim=1))
        return self.output(h, slot_src, slot_dst, e).squeeze(-1)


def _touched(edges: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The hits that ``edges`` (i64 ``[2, E]``, hit indices below ``n``) touch, in order
    (i64 ``[M]``), and the edges renumbered onto them (i64 ``[2, E]``): what
    ``torch.unique(edges, sorted=True, return_inverse=True)`` gives, in O(N + E) without a
    sort."""
    used = torch.zeros(n, dtype=torch.bool, device=edges.device)
    used[edges.reshape(-1)] = True
    nodes = used.nonzero().squeeze(1)
    local = torch.cumsum(used, 0) - 1
    return nodes, local.index_select(0, edges.reshape(-1)).reshape(edges.shape)


def classify_events(model: nn.Module, features: Sequence[torch.Tensor],
                    edges: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """GNN edge scores of several events in one pass (one disjoint graph,
    :mod:`exatrkx.core.batch`): f32 ``[N_e, 3]`` and i64 ``[2, E_e]`` per event -> f32
    ``[E_e]`` in [0, 1] per event. No message crosses from one event to another: their hits
    and edges are disjoint, and padding edges only join the padding sink to itself.

    The net sees only the hits that some edge of their event touches (renumbered in order,
    so edge orientation and every message are as on the whole event): a hit without edges
    changes no score, and at high pileup most hits have none left after the filter.
    """
    with torch.inference_mode():
        touched = [_touched(e, int(f.shape[0])) for f, e in zip(features, edges, strict=True)]
        layout = Layout.of([int(nodes.numel()) for nodes, _ in touched])
        joined = layout.join_edges([local.reshape(2, -1) for _, local in touched])
        if int(joined.edges.shape[1]) == 0:
            return [torch.zeros(0, dtype=torch.float32, device=e.device) for e in edges]
        x = layout.join_hits([f.to(torch.float32).index_select(0, nodes)
                              for f, (nodes, _) in zip(features, touched, strict=True)])
        return joined.split(torch.sigmoid(model(x, joined.edges)))


def classify_edges(model: nn.Module, features: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """GNN edge scores: features f32 ``[N, 3]``, edges i64 ``[2, E]`` -> f32 ``[E]`` in [0, 1]
    (a batch of one of :func:`classify_events`)."""
    return classify_events(model, [features], [edges])[0]
