"""Small building blocks shared by the three nets (all TorchScript-scriptable)."""

from __future__ import annotations

import math

import torch
from torch import nn

#: Width of :func:`encode_hits`' output: r, cos phi, sin phi, z.
HIT_DIM = 4
#: Width of :func:`edge_geometry`'s output: dr, dphi, dz, deta (scaled).
EDGE_DIM = 4


def encode_hits(x: torch.Tensor) -> torch.Tensor:
    """Hit features as the nets see them, continuous across phi = +-pi.

    ``x`` f32 ``[N, 3]`` = (r/1000, phi/pi, z/1000) -> f32 ``[N, 4]`` =
    (r/1000, cos phi, sin phi, z/1000).
    """
    phi = x[:, 1] * math.pi
    return torch.stack([x[:, 0], torch.cos(phi), torch.sin(phi), x[:, 2]], dim=1)


def orient_edges(x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Edges ``[2, E]`` turned to point outwards: ``[0]`` is the hit nearer the origin.

    Nearer means smaller ``r**2 + z**2`` (ties: the smaller index), so the orientation
    depends on the hits only, not on how the edge was written.
    """
    d = x[:, 0] * x[:, 0] + x[:, 2] * x[:, 2]
    a, b = edges[0], edges[1]
    da, db = d.index_select(0, a), d.index_select(0, b)
    swap = (db < da) | ((db == da) & (b < a))
    return torch.stack([torch.where(swap, b, a), torch.where(swap, a, b)])


def edge_geometry(x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Differences along each edge, outer minus inner, scaled to order one for neighbours.

    Args:
        x: f32 ``[N, 3]`` raw hit features (r/1000, phi/pi, z/1000).
        edges: i64 ``[2, E]``, oriented by :func:`orient_edges`.

    Returns:
        f32 ``[E, 4]``: 10 dr, 10 dphi/pi (wrapped into [-1, 1)), 10 dz, deta, with r and z in
        metres.
    """
    eta = torch.asinh(x[:, 2] / x[:, 0].clamp_min(1e-4))
    a, b = edges[0], edges[1]
    dr = x[:, 0].index_select(0, b) - x[:, 0].index_select(0, a)
    dphi = torch.remainder(x[:, 1].index_select(0, b) - x[:, 1].index_select(0, a) + 1.0,
                           2.0) - 1.0
    dz = x[:, 2].index_select(0, b) - x[:, 2].index_select(0, a)
    deta = eta.index_select(0, b) - eta.index_select(0, a)
    return torch.stack([10.0 * dr, 10.0 * dphi, 10.0 * dz, deta], dim=1)


def activation(name: str) -> nn.Module:
    """``"tanh"`` or ``"relu"`` as a module."""
    if name == "tanh":
        return nn.Tanh()
    if name == "relu":
        return nn.ReLU(inplace=True)
    raise ValueError(f"unknown activation {name!r} (expected 'tanh' or 'relu')")


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int, act: str = "tanh",
        norm: bool = False, out_act: bool = False) -> nn.Sequential:
    """A plain MLP: ``layers`` hidden Linear(+LayerNorm)+activation blocks, then Linear.

    Args:
        in_dim: input width.
        hidden: width of every hidden layer.
        out_dim: output width.
        layers: number of hidden blocks (>= 1).
        act: ``"tanh"`` or ``"relu"``.
        norm: LayerNorm before each hidden activation.
        out_act: LayerNorm + activation after the last Linear too (for latent outputs).

    Returns:
        ``nn.Sequential`` mapping ``[..., in_dim]`` -> ``[..., out_dim]``.
    """
    if layers < 1:
        raise ValueError("an MLP needs at least one hidden layer")
    mods: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        mods.append(nn.Linear(width, hidden))
        if norm:
            mods.append(nn.LayerNorm(hidden))
        mods.append(activation(act))
        width = hidden
    mods.append(nn.Linear(width, out_dim))
    if out_act:
        if norm:
            mods.append(nn.LayerNorm(out_dim))
        mods.append(activation(act))
    return nn.Sequential(*mods)


def pair_slots(edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather indices of :class:`PairMLP` for edges ``[2, E]``: ``(2 * src, 2 * dst + 1)``."""
    return 2 * edges[0], 2 * edges[1] + 1


class PairMLP(nn.Module):
    """An MLP on ``[nodes[src], nodes[dst], edge]`` that projects before it gathers.

    Equal to ``mlp(cat([nodes[src], nodes[dst], edge]))``, but the first Linear's source
    and destination blocks are applied once per node (one ``[N, 2H]`` matmul, viewed as
    ``[2N, H]``: row ``2v`` = source part of node v, row ``2v + 1`` = destination part)
    and then gathered with the indices of :func:`pair_slots`. Much less work when there
    are more edges than nodes. The state dict is that of the plain MLP (``first`` holds
    the ``[hidden, 2*node_dim+edge_dim]`` weight), so weights move between the two forms.
    """

    def __init__(self, node_dim: int, edge_dim: int, hidden: int, out_dim: int, layers: int,
                 act: str = "tanh", norm: bool = False, out_act: bool = False) -> None:
        super().__init__()
        self.node_dim = node_dim
        self.edge_dim = edge_dim
        full = mlp(2 * node_dim + edge_dim, hidden, out_dim, layers, act, norm, out_act)
        first = full[0]
        assert isinstance(first, nn.Linear)
        self.first: nn.Linear = first
        self.rest = nn.Sequential(*list(full.children())[1:])

    def forward(self, nodes: torch.Tensor, slot_src: torch.Tensor, slot_dst: torch.Tensor,
                edge: torch.Tensor | None = None) -> torch.Tensor:
        """Shapes: nodes ``[N, node_dim]``; slots ``[E]`` i64 from :func:`pair_slots`;
        edge ``[E, edge_dim]`` or None when ``edge_dim == 0`` -> ``[E, out_dim]``."""
        w = self.first.weight
        d = self.node_dim
        w_nodes = torch.cat([w[:, :d], w[:, d:2 * d]], dim=0)  # [2H, d]
        bias = torch.cat([self.first.bias, torch.zeros_like(self.first.bias)])
        proj = torch.addmm(bias, nodes, w_nodes.t()).view(-1, w.shape[0])
        z = proj.index_select(0, slot_src) + proj.index_select(0, slot_dst)
        if edge is not None:
            z = torch.addmm(z, edge, w[:, 2 * d:].t())
        return self.rest(z)
