"""Several events as one disjoint graph: the layout, and each event's results bitwise the same
alone and in any batch (on random nets and synthetic events, and on the shared real events
with the shipped nets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from exatrkx.config import PipelineConfig
from exatrkx.core.batch import BLOCK_ROWS, Layout, round_up, sub_batches
from exatrkx.core.models import Nets, build_models, load_models, script_models
from exatrkx.core.stages.build import build_edges, build_events
from exatrkx.core.stages.embed import embed, embed_events
from exatrkx.core.stages.filter import filter_edges, filter_events
from exatrkx.core.stages.gnn import classify_edges, classify_events
from exatrkx.io import iter_events


def test_layout_starts_on_blocks_and_ends_with_the_sink() -> None:
    layout = Layout.of([3, 0, 64, 65])
    assert layout.starts == (0, 64, 64, 128)
    assert layout.rows == 128 + 128 + BLOCK_ROWS
    assert layout.sink == layout.rows - BLOCK_ROWS
    packed = Layout.of([3, 0, 5], block=1)
    assert packed.starts == (0, 3, 3) and packed.rows == 8
    assert round_up(0, 64) == 0 and round_up(1, 64) == 64 and round_up(128, 64) == 128
    with pytest.raises(ValueError):
        Layout.of([1], block=0)


@pytest.mark.parametrize("block", [1, BLOCK_ROWS])
def test_join_and_split_keep_each_event_apart(block: int) -> None:
    rng = np.random.default_rng(0)
    hits = [5, 0, 1, 70, 2]
    feats = [torch.from_numpy(rng.random((n, 3), dtype=np.float32)) for n in hits]
    edges = [torch.from_numpy(rng.integers(0, max(n, 1), (2, m))) if n else
             torch.zeros((2, 0), dtype=torch.int64) for n, m in zip(hits, (4, 0, 0, 90, 1),
                                                                     strict=True)]
    layout = Layout.of(hits, block)
    joined = layout.join_hits(feats)
    assert joined.shape == (layout.rows, 3)
    for got, want in zip(layout.split_hits(joined), feats, strict=True):
        assert torch.equal(got, want)
    je = layout.join_edges(edges)
    assert je.counts == (4, 0, 0, 90, 1)
    for e, start, n, part in zip(edges, layout.starts, hits,
                                 je.split(je.edges.t()), strict=True):
        assert torch.equal(part.t(), e + start)  # shifted into the event's own rows
        assert bool(((part >= start) & (part < start + max(n, 1))).all())
    if block > 1:
        assert je.edges.shape[1] % block == 0
        assert all(s % block == 0 for s in je.starts)
        real = torch.zeros(je.edges.shape[1], dtype=torch.bool)
        for s, m in zip(je.starts, je.counts, strict=True):
            real[s:s + m] = True
        assert bool((je.edges[:, ~real] == layout.sink).all())  # padding: sink to sink
        assert bool((joined[layout.sink:] == 0).all())
    else:
        assert je.edges.shape[1] == sum(je.counts)


def test_sub_batches_respect_the_budget_and_the_order() -> None:
    assert sub_batches([10, 20, 30, 5, 100, 1], 40) == [[0, 1], [2, 3], [4], [5]]
    assert sub_batches([], 10) == []
    assert sub_batches([3, 3, 3], 1) == [[0], [1], [2]]
    with pytest.raises(ValueError):
        sub_batches([1], 0)


def _synthetic(n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = np.stack([rng.uniform(0.03, 1.0, n), rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)], 1)
    return torch.from_numpy(x.astype(np.float32))


def _batches(count: int, seed: int) -> list[list[int]]:
    """Events ``0..count-1`` shuffled and cut into batches of 2, 3, 5, 8 and 13."""
    rng = np.random.default_rng(seed)
    out = []
    for size in (2, 3, 5, 8, 13):
        order = rng.permutation(count).tolist()
        out += [order[i:i + size] for i in range(0, count, size)]
    return out


def _assert_batches_are_bitwise_alone(nets: Nets, config: PipelineConfig,
                                      events: list[torch.Tensor]) -> None:
    with torch.inference_mode():
        emb = [embed(nets.embed, x) for x in events]
        edges = [build_edges(e, config.radius, config.max_neighbours) for e in emb]
        filt = [filter_edges(nets.filter, x, e, config.filter_cut)
                for x, e in zip(events, edges, strict=True)]
        gnn = [classify_edges(nets.gnn, x, k) for x, (k, _) in zip(events, filt, strict=True)]
        assert sum(int(e.shape[1]) for e in edges) > 0, "the events have edges"
        for idx in _batches(len(events), 7):
            xs = [events[i] for i in idx]
            for i, got in zip(idx, embed_events(nets.embed, xs), strict=True):
                assert torch.equal(got, emb[i]), f"embedding of event {i} in batch {idx}"
            for i, got in zip(idx, build_events([emb[i] for i in idx], config.radius,
                                                config.max_neighbours), strict=True):
                assert torch.equal(got, edges[i])
            for i, (kept, scores) in zip(idx, filter_events(
                    nets.filter, xs, [edges[i] for i in idx], config.filter_cut), strict=True):
                assert torch.equal(scores, filt[i][1]), f"filter scores of event {i} in {idx}"
                assert torch.equal(kept, filt[i][0])
            for i, got in zip(idx, classify_events(nets.gnn, xs, [filt[i][0] for i in idx]),
                              strict=True):
                assert torch.equal(got, gnn[i]), f"GNN scores of event {i} in batch {idx}"


def test_random_nets_give_each_event_the_same_bits_alone_and_in_batches() -> None:
    config = PipelineConfig(radius=0.2, max_neighbours=12)
    nets = script_models(build_models(config, seed=4)).eval()
    sizes = [2, 3, 17, 31, 32, 33, 63, 64, 65, 150, 257, 600, 1000, 5, 97, 128, 129, 40, 300]
    _assert_batches_are_bitwise_alone(nets, config, [_synthetic(n, s)
                                                     for s, n in enumerate(sizes)])


@pytest.mark.shared_data
@pytest.mark.slow
def test_shipped_nets_give_each_shared_event_the_same_bits_alone_and_in_batches(
        shared_hnl_dir: Path) -> None:
    nets, config = load_models(None)
    events = [torch.from_numpy(ev.features) for _, ev in
              zip(range(40), iter_events(shared_hnl_dir), strict=False)]
    _assert_batches_are_bitwise_alone(script_models(nets).eval(), config, events)


def test_gnn_scores_of_events_with_untouched_hits_are_the_same_alone_and_in_batches() -> None:
    """The GNN runs on the hits some edge touches (most hits at 200 pileup have none after
    the filter): the scores equal the net's on the whole event, alone and in batches."""
    config = PipelineConfig()
    nets = script_models(build_models(config, seed=5)).eval()
    rng = np.random.default_rng(3)
    events, edge_lists = [], []
    for n in (400, 3, 90, 1000, 65):
        events.append(_synthetic(n, n))
        touched = rng.choice(n, size=max(2, n // 10), replace=False)  # a few hits have edges
        pairs = rng.choice(touched, size=(2, max(1, n // 5)))
        pairs = pairs[:, pairs[0] != pairs[1]]
        edge_lists.append(torch.from_numpy(np.stack([pairs.max(0), pairs.min(0)])))
    edge_lists.append(torch.zeros((2, 0), dtype=torch.int64))  # an event without edges
    events.append(_synthetic(30, 1))
    with torch.inference_mode():
        alone = [classify_edges(nets.gnn, x, e) for x, e in zip(events, edge_lists, strict=True)]
        for x, e, got in zip(events, edge_lists, alone, strict=True):
            whole = torch.sigmoid(nets.gnn(x, e)) if e.shape[1] else torch.zeros(0)
            torch.testing.assert_close(got, whole)
        for idx in _batches(len(events), 11):
            batch = classify_events(nets.gnn, [events[i] for i in idx],
                                    [edge_lists[i] for i in idx])
            for i, got in zip(idx, batch, strict=True):
                assert torch.equal(got, alone[i]), f"GNN scores of event {i} in batch {idx}"


def test_a_layer_pairs_pipeline_labels_each_event_alone_as_in_a_batch() -> None:
    from exatrkx.config import EmbedConfig, LayerMapConfig
    from exatrkx.core.pipeline import pipeline_from_nets

    radii = (32.0, 72.0, 116.0, 172.0, 260.0)
    layers = LayerMapConfig(
        boxes=tuple((r - 2.0, r + 2.0, -600.0, 600.0) for r in radii),
        pairs=tuple((i, i + 1, -0.05, 0.05, -20.0, 20.0) for i in range(len(radii) - 1)))
    config = PipelineConfig(embed=EmbedConfig(kind="layers", out_dim=4),
                            build_method="layer_pairs", layers=layers, filter_cut=0.0,
                            gnn_cut=0.0)
    nets = build_models(config, seed=2)
    rng = np.random.default_rng(8)
    events = []
    for tracks in (30, 1, 80, 12):
        phi = rng.uniform(-np.pi, np.pi, tracks)
        cot = rng.uniform(-1.0, 1.0, tracks)
        rows = [(r, p + 0.0005 * r * rng.normal(), r * c) for r in radii
                for p, c in zip(phi, cot, strict=True)]
        feats = np.array([(r / 1000, np.remainder(p + np.pi, 2 * np.pi) / np.pi - 1, z / 1000)
                          for r, p, z in rows], dtype=np.float32)
        events.append(feats[rng.permutation(len(feats))])
    pipe = pipeline_from_nets(nets, config, num_threads=None)
    alone = [pipe.run(f) for f in events]
    assert all(res.edges["build"] > 0 for res in alone[:1] + alone[2:])
    assert any((res.labels >= 0).any() for res in alone), "the events make tracks"
    for order in ([0, 1, 2, 3], [3, 0], [2]):
        for i, res in zip(order, pipe.run_batch([events[i] for i in order]), strict=True):
            np.testing.assert_array_equal(res.labels, alone[i].labels)
