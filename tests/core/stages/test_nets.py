"""The three nets: shapes, scripted == eager, stage helpers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from exatrkx.config import EmbedConfig, FilterConfig, GNNConfig, PipelineConfig
from exatrkx.core.models import build_models, script_models
from exatrkx.core.nets import EDGE_DIM, HIT_DIM, edge_geometry, encode_hits, mlp, orient_edges
from exatrkx.core.stages.embed import EmbeddingNet, embed
from exatrkx.core.stages.filter import FilterNet, filter_edges
from exatrkx.core.stages.gnn import InteractionGNN, classify_edges


def _graph(n: int = 50, e: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=g) * 2 - 1
    edges = torch.randint(0, n, (2, e), generator=g)
    return x, edges


def test_embedding_shape_and_norm() -> None:
    x, _ = _graph()
    out = embed(EmbeddingNet(EmbedConfig(out_dim=12)), x)
    assert out.shape == (50, 12)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=1), torch.ones(50))
    raw = EmbeddingNet(EmbedConfig(normalize=False))(x)
    assert not torch.allclose(raw.norm(dim=1), torch.ones(50))


def test_filter_equals_mlp_on_concatenation() -> None:
    torch.manual_seed(1)
    cfg = FilterConfig(hidden=16, layers=2)
    net = FilterNet(cfg)
    plain = mlp(2 * HIT_DIM + EDGE_DIM, 16, 1, 2, cfg.activation, cfg.norm)
    plain.load_state_dict({k.replace("first.", "0.").replace("rest.", "", 1): v
                           for k, v in _renumber(net.net.state_dict()).items()})
    x, edges = _graph()
    inner_outer = orient_edges(x, edges)
    h = encode_hits(x)
    expect = plain(torch.cat([h[inner_outer[0]], h[inner_outer[1]],
                              edge_geometry(x, inner_outer)], dim=1)).squeeze(-1)
    torch.testing.assert_close(net(x, edges), expect)


def test_filter_and_gnn_ignore_edge_orientation_and_phi_wrap() -> None:
    """A pair scores the same written either way, and an event turned by 2 pi is the same."""
    torch.manual_seed(2)
    x, edges = _graph()
    flipped = edges.flip(0)
    turned = x.clone()
    turned[:, 1] = torch.where(turned[:, 1] > 0, turned[:, 1] - 2.0, turned[:, 1] + 2.0)
    for net in (FilterNet(FilterConfig()), InteractionGNN(GNNConfig())):
        net.eval()
        with torch.no_grad():
            ref = net(x, edges)
            torch.testing.assert_close(net(x, flipped), ref)
            torch.testing.assert_close(net(turned, edges), ref, atol=1e-5, rtol=1e-4)


def test_orient_edges_points_outwards() -> None:
    x = torch.tensor([[0.1, 0.0, 0.0], [0.3, 0.0, 0.1], [0.2, 0.5, -0.1]])
    edges = torch.tensor([[0, 2, 1], [1, 0, 2]])
    out = orient_edges(x, edges)
    assert out.tolist() == [[0, 0, 2], [1, 2, 1]]


def _renumber(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``rest.<i>.*`` -> ``<i+1>.*`` so that a PairMLP loads into the plain MLP."""
    out = {}
    for k, v in state.items():
        if k.startswith("rest."):
            idx, rest = k[5:].split(".", 1)
            out[f"{int(idx) + 1}.{rest}"] = v
        else:
            out[k] = v
    return out


class FixedLogits(nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        return self.logits[: edges.shape[1]]


def test_filter_edges_keeps_above_cut() -> None:
    edges = torch.tensor([[1, 2, 3, 3], [0, 0, 1, 2]])
    logits = torch.tensor([2.0, -2.0, 0.0, 5.0])
    kept, scores = filter_edges(FixedLogits(logits), torch.zeros(4, 3), edges, 0.5)
    assert kept.tolist() == [[1, 3], [0, 2]]
    torch.testing.assert_close(scores, torch.sigmoid(logits))
    kept, scores = filter_edges(FixedLogits(logits), torch.zeros(4, 3), edges[:, :0], 0.5)
    assert kept.shape == (2, 0) and scores.shape == (0,)


def test_filter_chunks_give_same_scores() -> None:
    x, edges = _graph(e=1000)
    net = FilterNet().eval()
    k1, s1 = filter_edges(net, x, edges, 0.5)
    k2, s2 = filter_edges(net, x, edges, 0.5, chunk=77)
    torch.testing.assert_close(s1, s2)
    assert torch.equal(k1, k2)


def test_gnn_shapes_and_edge_order() -> None:
    x, edges = _graph()
    net = InteractionGNN(GNNConfig(hidden=16, steps=3)).eval()
    scores = classify_edges(net, x, edges)
    assert scores.shape == (200,)
    assert bool(((scores >= 0) & (scores <= 1)).all())
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(classify_edges(net, x, edges[:, perm]), scores[perm])
    assert classify_edges(net, x, edges[:, :0]).shape == (0,)


def test_gnn_scores_only_need_the_hits_of_the_edges() -> None:
    x, edges = _graph()
    net = InteractionGNN(GNNConfig(hidden=16, steps=3)).eval()
    # many hits without edges (as after the filter at high pileup) change nothing
    lonely = torch.rand(5000, 3, generator=torch.Generator().manual_seed(9))
    x_big = torch.cat([lonely[:2500], x, lonely[2500:]])
    with torch.inference_mode():
        whole = torch.sigmoid(net(x_big, edges + 2500))
    torch.testing.assert_close(classify_edges(net, x_big, edges + 2500), whole)
    torch.testing.assert_close(classify_edges(net, x, edges), whole)


def test_touched_hits_are_those_of_a_sorted_unique() -> None:
    from exatrkx.core.stages.gnn import _touched

    gen = torch.Generator().manual_seed(3)
    for n, e in [(50, 0), (50, 1), (1000, 300), (200, 5000)]:
        edges = torch.randint(0, n, (2, e), generator=gen)
        nodes, local = _touched(edges, n)
        want_nodes, want_local = torch.unique(edges, sorted=True, return_inverse=True)
        assert torch.equal(nodes, want_nodes)
        assert torch.equal(local, want_local.reshape(2, -1))


def test_gnn_uses_neighbours() -> None:
    x, edges = _graph()
    net = InteractionGNN(GNNConfig(hidden=16, steps=2)).eval()
    base = classify_edges(net, x, edges)
    x2 = x.clone()
    far = int(edges[0, 0])
    x2[far] += 0.5
    changed = classify_edges(net, x2, edges)
    touches = (edges[0] == far) | (edges[1] == far)
    assert not torch.allclose(base[touches], changed[touches])


@pytest.mark.parametrize("config", [PipelineConfig(), PipelineConfig(
    embed=EmbedConfig(hidden=32, layers=2, activation="relu", normalize=False),
    filter=FilterConfig(hidden=16, layers=3, norm=False, activation="tanh"),
    gnn=GNNConfig(hidden=16, steps=2, mlp_layers=2, activation="tanh"))])
def test_scripted_equals_eager(config: PipelineConfig) -> None:
    nets = build_models(config, seed=3)
    scripted = script_models(nets)
    x, edges = _graph(n=80, e=300)
    with torch.inference_mode():
        for _ in range(3):  # the profiling executor optimises after a few calls
            torch.testing.assert_close(scripted.embed(x), nets.embed(x), rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(scripted.filter(x, edges), nets.filter(x, edges),
                                       rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(scripted.gnn(x, edges), nets.gnn(x, edges),
                                       rtol=1e-6, atol=1e-6)


def test_bad_activation() -> None:
    with pytest.raises(ValueError, match="activation"):
        EmbeddingNet(EmbedConfig(activation="gelu"))
