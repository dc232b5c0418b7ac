"""The layer-pair build: layer assignment, windows, wrap at phi = +-pi, brute-force equality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exatrkx.config import LayerMapConfig
from exatrkx.core.models import quiet_jit
from exatrkx.core.stages.layerpairs import (
    LayerEmbedding,
    build_layer_pairs,
    layer_geometry,
    pair_residuals,
)

#: Two barrel layers (r 30 and 70 mm, |z| < 500) and a disk at z = 600 mm (r 30-170).
BOXES = ((29.0, 31.0, -500.0, 500.0), (69.0, 71.0, -500.0, 500.0),
         (30.0, 170.0, 599.0, 601.0))


def features(r: list[float], phi: list[float], z: list[float]) -> torch.Tensor:
    return torch.tensor(np.stack([np.array(r) / 1000, np.array(phi) / np.pi,
                                  np.array(z) / 1000], axis=1), dtype=torch.float32)


def test_each_hit_gets_the_layer_whose_box_holds_it() -> None:
    net = LayerEmbedding(LayerMapConfig(boxes=BOXES))
    x = features([30, 70, 100, 500], [0.1, 0.2, 0.3, 0.4], [10, -20, 600, 0])
    out = net(x)
    assert out.shape == (4, 4)
    torch.testing.assert_close(out[:, :3], x)
    assert out[:, 3].tolist() == [0, 1, 2, -1]
    with quiet_jit():
        scripted = torch.jit.script(net)
    assert torch.equal(scripted(x), out)
    assert not net.state_dict()  # no weights: the boxes come from the config


def test_windows_in_phi_and_along_the_layer() -> None:
    # pair 0 -> 1: dphi in [-0.01, 0.01], du in [-5, 5] mm around z_a * 70 / 30
    lm = LayerMapConfig(boxes=BOXES, pairs=((0, 1, -0.01, 0.01, -5.0, 5.0),))
    x = features([30, 70, 70, 70, 70], [0.5, 0.505, 0.52, 0.5, 0.5], [30, 70, 70, 90, 76])
    edges = build_layer_pairs(LayerEmbedding(lm)(x), lm, 64)
    # hit 1 (in both windows) and hit 4 (du = 6 mm: outside); 2: dphi 0.02; 3: du 20 mm
    assert edges.tolist() == [[1], [0]]


def test_pairs_across_phi_pi() -> None:
    lm = LayerMapConfig(boxes=BOXES, pairs=((0, 1, -0.02, 0.02, -5.0, 5.0),))
    x = features([30, 70, 70], [np.pi - 0.005, -np.pi + 0.005, 0.0], [0, 0, 0])
    assert build_layer_pairs(LayerEmbedding(lm)(x), lm, 64).tolist() == [[1], [0]]


def test_disks_use_the_radius() -> None:
    # barrel hit at r 30, z 200: the line from the origin reaches z = 600 at r = 90
    lm = LayerMapConfig(boxes=BOXES, pairs=((0, 2, -0.01, 0.01, -2.0, 2.0),))
    x = features([30, 91, 95], [0.0, 0.0, 0.0], [200, 600, 600])
    assert build_layer_pairs(LayerEmbedding(lm)(x), lm, 64).tolist() == [[1], [0]]


def test_agrees_with_brute_force() -> None:
    rng = np.random.default_rng(4)
    n = 600
    layer = rng.integers(0, 3, n)
    r = np.where(layer == 0, 30.0, np.where(layer == 1, 70.0, rng.uniform(30, 170, n)))
    z = np.where(layer == 2, 600.0, rng.uniform(-490, 490, n))
    phi = rng.uniform(-np.pi, np.pi, n)
    pairs = ((0, 1, -0.3, 0.2, -60.0, 40.0), (1, 2, -0.2, 0.4, -50.0, 30.0),
             (0, 0, -0.1, 0.1, -20.0, 20.0))
    lm = LayerMapConfig(boxes=BOXES, pairs=pairs)
    x = features(list(r), list(phi), list(z))
    got = build_layer_pairs(LayerEmbedding(lm)(x), lm, 600)
    # brute force from the float32 features, as the build sees them
    f = x.numpy().astype(np.float64)
    r, phi, z = f[:, 0] * 1000, f[:, 1] * np.pi, f[:, 2] * 1000
    barrel, pos = layer_geometry(np.array(BOXES))
    want = set()
    for inner, outer, plo, phi_hi, ulo, uhi in pairs:
        a, b = np.meshgrid(np.flatnonzero(layer == inner), np.flatnonzero(layer == outer))
        a, b = a.ravel(), b.ravel()
        dphi, du = pair_residuals(r, phi, z, a, b, barrel[layer[b]], pos[layer[b]])
        ok = (dphi >= plo) & (dphi <= phi_hi) & (du >= ulo) & (du <= uhi) & (a != b)
        want |= {(max(i, j), min(i, j)) for i, j in zip(a[ok], b[ok], strict=True)}
    assert len(want) > 100
    assert got.tolist() == [list(c) for c in zip(*sorted(want), strict=True)]


@pytest.mark.parametrize("shape", [(5, 3), (5, 8)])
def test_needs_the_layer_embedding(shape: tuple[int, int]) -> None:
    lm = LayerMapConfig(boxes=BOXES, pairs=((0, 1, -0.1, 0.1, -5.0, 5.0),))
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        build_layer_pairs(torch.zeros(shape), lm, 64)


def test_no_pairs_no_edges() -> None:
    lm = LayerMapConfig(boxes=BOXES)
    x = features([30, 70], [0.0, 0.0], [0, 0])
    out = build_layer_pairs(LayerEmbedding(lm)(x), lm, 64)
    assert out.shape == (2, 0) and out.dtype == torch.int64


def test_at_most_k_outer_hits_per_hit() -> None:
    # one inner hit, ten outer hits in its window at growing distance from the centre
    lm = LayerMapConfig(boxes=BOXES, pairs=((0, 1, -0.1, 0.1, -50.0, 50.0),))
    du = [9.0, 1.0, 5.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 0.5]
    x = features([30] + [70] * 10, [0.0] * 11, [0.0, *du])
    emb = LayerEmbedding(lm)(x)
    assert build_layer_pairs(emb, lm, 64).shape[1] == 10
    edges = build_layer_pairs(emb, lm, 3)
    assert edges[1].tolist() == [0, 0, 0]
    assert sorted(du[i - 1] for i in edges[0].tolist()) == [0.5, 1.0, 2.0]
