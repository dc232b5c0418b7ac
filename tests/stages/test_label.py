"""Connected-components labelling on hand-made graphs."""

from __future__ import annotations

import torch

from exatrkx.stages.label import label_hits


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
