"""Connected-components labelling on hand-made graphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exatrkx.core.stages.label import label_event, label_hits


def test_hand_made_graph() -> None:
    # components {1, 4, 6} and {2, 3}; edge 5-0 is cut; hits 0, 5, 7 are unassigned
    edges = torch.tensor([[4, 6, 3, 5, 7], [1, 4, 2, 0, 2]])
    scores = torch.tensor([0.9, 0.8, 0.95, 0.1, 0.5])
    labels = label_hits(8, edges, scores, 0.5)
    assert labels.tolist() == [-1, 0, 1, 1, 0, -1, 0, -1]
    assert labels.dtype == torch.int64


def test_numbering_follows_smallest_hit() -> None:
    edges = torch.tensor([[9, 3, 8], [7, 0, 5]])
    labels = label_hits(10, edges, torch.ones(3), 0.5)
    assert labels.tolist() == [0, -1, -1, 0, -1, 1, -1, 2, 1, 2]


def test_no_edges() -> None:
    labels = label_hits(4, torch.zeros((2, 0), dtype=torch.int64), torch.zeros(0), 0.5)
    assert labels.tolist() == [-1, -1, -1, -1]
    assert label_hits(0, torch.zeros((2, 0), dtype=torch.int64), torch.zeros(0), 0.5).shape == (0,)


def test_cut_is_strict() -> None:
    labels = label_hits(2, torch.tensor([[1], [0]]), torch.tensor([0.5]), 0.5)
    assert labels.tolist() == [-1, -1]


def _two_tracks() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two 4-hit tracks going out at phi = 0 and phi = 0.1 pi, with skip-one edges, and a
    weak wrong edge from hit 1 (track A) to hit 6 (track B)."""
    r = torch.tensor([0.1, 0.2, 0.3, 0.4])
    a = torch.stack([r, torch.zeros(4), r * 0.5], dim=1)
    b = torch.stack([r, torch.full((4,), 0.1), r * 0.5], dim=1)
    features = torch.cat([a, b])
    pairs = [(1, 0), (2, 1), (3, 2), (2, 0), (5, 4), (6, 5), (7, 6), (6, 4), (6, 1)]
    edges = torch.tensor(pairs, dtype=torch.int64).t()
    scores = torch.tensor([0.99, 0.98, 0.97, 0.9, 0.99, 0.98, 0.97, 0.9, 0.8])
    return features, edges, scores


def test_components_merge_two_tracks_through_one_wrong_edge() -> None:
    features, edges, scores = _two_tracks()
    labels = label_event(features, edges, scores, 0.5, "components")
    assert labels.tolist() == [0] * 8


@pytest.mark.parametrize("method", ["best_outer", "best_inner"])
def test_best_edges_cut_the_wrong_edge_and_keep_each_chain(method: str) -> None:
    features, edges, scores = _two_tracks()
    labels = label_event(features, edges, scores, 0.5, method)
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # written the other way round, the edges give the same tracks
    flipped = label_event(features, edges.flip(0), scores, 0.5, method)
    assert flipped.tolist() == labels.tolist()


def test_best_outer_keeps_tracks_apart_that_start_together() -> None:
    """Each track's first hit (0, 4) also links to the other track's second hit, scoring a
    little below its own continuation: plain components merge the two tracks."""
    features, edges, scores = _two_tracks()
    extra = torch.tensor([[5, 1], [0, 4]])  # 0 -> 5 and 4 -> 1, scoring below the truth
    edges = torch.cat([edges, extra], dim=1)
    scores = torch.cat([scores, torch.tensor([0.95, 0.95])])
    assert label_event(features, edges, scores, 0.5, "components").tolist() == [0] * 8
    out = label_event(features, edges, scores, 0.5, "best_outer")
    assert out.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_label_event_applies_the_cut_and_rejects_unknown_methods() -> None:
    features, edges, scores = _two_tracks()
    low = scores.clone()
    low[2] = 0.1  # the link 3-2 falls below the cut: hit 3 is left alone
    assert label_event(features, edges, low, 0.5).tolist() == [0, 0, 0, -1, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="unknown label method"):
        label_event(features, edges, scores, 0.5, "walk")


def _helix_event(tracks: list[tuple[float, float, int]], noise: int, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hits of tracks ``(pT GeV, phi0, hits)`` from the origin in 2 T, plus ``noise`` random
    hits; edges between consecutive hits of a track (high scores) and random edges (any
    score), shuffled hit order."""
    rng = np.random.default_rng(seed)
    rows, pairs = [], []
    for pt, phi0, n in tracks:
        radius_m = pt / (0.3 * 2.0)
        r = np.linspace(0.03, min(1.0, 1.9 * radius_m), n)
        phi = phi0 + np.arcsin(np.clip(r / (2 * radius_m), -1, 1))
        first = len(rows)
        rows += [(ri, (p / np.pi + 1) % 2 - 1, 0.3 * ri) for ri, p in zip(r, phi, strict=True)]
        pairs += [(first + i + 1, first + i) for i in range(n - 1)]
    rows += [(rng.uniform(0.03, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)) for _ in range(noise)]
    n_hits = len(rows)
    scores = [rng.uniform(0.7, 1.0) for _ in pairs]
    for _ in range(n_hits // 6 if n_hits > 1 else 0):
        a, b = rng.choice(n_hits, 2, replace=False)
        pairs.append((max(a, b), min(a, b)))
        scores.append(rng.uniform(0, 0.55))  # a few above the cut of 0.5
    perm = rng.permutation(n_hits)
    inverse = np.argsort(perm)
    feats = torch.tensor(np.asarray(rows, np.float32)[perm] if rows else np.zeros((0, 3)),
                         dtype=torch.float32)
    edges = (torch.tensor(inverse[np.asarray(pairs, np.int64)].T.copy()) if pairs
             else torch.zeros((2, 0), dtype=torch.int64))
    return feats, edges, torch.tensor(scores, dtype=torch.float32)


@pytest.mark.parametrize("method", ["components", "best_outer", "best_inner", "best_both"])
def test_label_events_on_a_disjoint_graph_give_each_event_its_labels_alone(
        method: str) -> None:
    from exatrkx.config import SelectionConfig
    from exatrkx.core.stages.label import label_events

    events = [
        _helix_event([], 0, 0),                                        # no hits
        _helix_event([], 1, 1),                                        # one hit
        _helix_event([(5.0, 0.1, 2)], 0, 2),                           # two hits, one edge
        _helix_event([(0.2, 0.3, 10), (3.0, -0.5, 12), (0.3, 2.0, 9), (20.0, 1.0, 10)],
                     25, 3),                                          # many, loopers too
        _helix_event([(1.0, -2.0, 10), (0.25, 0.0, 10)], 5, 4),
    ]
    selection = SelectionConfig()
    alone = [label_event(f, e, s, 0.5, method, selection) for f, e, s in events]
    assert any(bool((a >= 0).any()) for a in alone), "tracks are found"
    assert any(a.numel() and int(a.max()) >= 1 for a in alone), "an event has several"
    every = [label_event(f, e, s, 0.5, method, None) for f, e, s in events]
    assert sum(int((a >= 0).sum()) for a in alone) < sum(int((a >= 0).sum()) for a in every), \
        "the pT selection drops tracks (it is part of the test)"
    rng = np.random.default_rng(9)
    for _ in range(6):
        order = rng.permutation(len(events)).tolist()[:int(rng.integers(1, len(events) + 1))]
        got = label_events([events[i][0] for i in order], [events[i][1] for i in order],
                           [events[i][2] for i in order], 0.5, method, selection)
        for i, labels in zip(order, got, strict=True):
            assert labels.tolist() == alone[i].tolist(), (method, i, order)
    assert label_events([], [], [], 0.5, method, selection) == []


def test_best_both_keeps_a_hit_its_inner_neighbour_skipped() -> None:
    """a -> c skips b (scores higher than a -> b) and b has no edge outwards: best_outer
    loses b, best_both keeps it through b's best edge inwards."""
    feats = torch.tensor([[0.10, 0.0, 0.0], [0.20, 0.0, 0.0], [0.30, 0.0, 0.0],
                          [0.40, 0.0, 0.0]])
    edges = torch.tensor([[1, 2, 3], [0, 0, 2]])  # b-a, c-a, d-c
    scores = torch.tensor([0.90, 0.95, 0.90])
    outer = label_event(feats, edges, scores, 0.5, "best_outer")
    both = label_event(feats, edges, scores, 0.5, "best_both")
    assert outer.tolist() == [0, -1, 0, 0]
    assert both.tolist() == [0, 0, 0, 0]
