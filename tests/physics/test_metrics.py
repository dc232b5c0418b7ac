"""Physics metrics on a hand-made event with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exatrkx.errors import InputError
from exatrkx.io import Event
from exatrkx.physics.metrics import (
    MetricsConfig,
    edge_counts,
    evaluate_event,
    evaluate_tracks,
    gnn_edges,
    summarize,
)
from exatrkx.physics.plots import plot_efficiency, plot_efficiency_comparison
from exatrkx.physics.truth import event_truth_graph

# particle -> (hit ids, pt [GeV], production radius [mm])
PARTICLES = {11: (range(1, 7), 2.0, 0.0),      # A: 6 hits
             22: (range(7, 13), 3.0, 50.0),    # B: 6 hits, displaced
             33: (range(13, 18), 0.5, 0.0),    # C: 5 hits, too soft to count
             44: (range(18, 28), 5.0, 0.0)}    # D: 10 hits
NOISE = [28, 29, 30]
# track of each hit id (missing = -1)
TRACKS = {**dict.fromkeys([1, 2, 3, 4, 5, 26], 0),   # A 5/6 (+ a D hit) -> matched
          **dict.fromkeys([7, 8, 9], 1),               # B, 3 hits: not a candidate
          **dict.fromkeys([10, 11, 12, 28, 29], 2),    # B 3/5 but only half of B -> fake
          **dict.fromkeys([13, 14, 15, 16, 17], 3),    # C -> matched (not reconstructable)
          **dict.fromkeys([18, 19, 20, 21, 22, 23], 4),  # D 6/10 -> matched
          **dict.fromkeys([24, 25, 27, 30], 5)}        # D 3/4, 4 hits: not a candidate


def make_event(seed: int = 0) -> Event:
    rows, truth_rows, part_rows = [], [], []
    for pid, (ids, pt, radius) in PARTICLES.items():
        part_rows.append({"particle_id": pid, "particle_type": 13, "vx": radius, "vy": 0.0,
                          "vz": 0.0, "px": pt, "py": 0.0, "pz": pt, "q": 1,
                          "nhits": len(ids)})
        for h in ids:
            truth_rows.append({"hit_id": h, "particle_id": pid, "weight": 1.0})
    for h in NOISE:
        truth_rows.append({"hit_id": h, "particle_id": 0, "weight": 0.0})
    for t in truth_rows:
        t.update({"tx": 0.0, "ty": 0.0, "tz": 0.0, "tpx": 0.0, "tpy": 0.0, "tpz": 0.0})
        rows.append({"hit_id": t["hit_id"], "x": 30.0 + t["hit_id"], "y": 1.0, "z": 2.0,
                     "volume_id": 8, "layer_id": 2, "module_id": 1})
    hits = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # rows not in id order
    return Event.from_tables("event000000001", hits, pd.DataFrame(part_rows),
                             pd.DataFrame(truth_rows))


def labels_of(event: Event) -> np.ndarray:
    return np.array([TRACKS.get(int(h), -1) for h in event.hit_id], dtype=np.int64)


def rows_of(event: Event, pairs: list[tuple[int, int]]) -> np.ndarray:
    row = {int(h): i for i, h in enumerate(event.hit_id)}
    return np.array([[row[a] for a, _ in pairs], [row[b] for _, b in pairs]], dtype=np.int64)


def test_track_metrics() -> None:
    ev = make_event()
    m = evaluate_event(ev, labels_of(ev))
    c = m.counts
    assert c["tracks"] == 6
    assert c["candidate_tracks"] == 4      # tracks 0, 2, 3, 4
    assert c["fake_tracks"] == 1           # track 2
    assert c["majority_tracks"] == 4       # A, B, C, D once each
    assert c["duplicate_tracks"] == 0
    assert (c["reconstructable"], c["matched_reconstructable"]) == (3, 2)  # A, B, D; A, D
    assert (c["displaced"], c["matched_displaced"]) == (1, 0)
    s = summarize([m])
    assert s["track_efficiency"] == pytest.approx(2 / 3)
    assert s["fake_rate"] == pytest.approx(1 / 4)
    assert s["fake_rate_majority"] == 0.0  # track 2 has a majority particle, too few of its hits
    assert s["duplicate_rate"] == 0.0
    assert s["track_efficiency_displaced"] == 0.0
    # matched intersections: A 5 hits, C 5, D 6 (weight 1 each); total weight 27
    assert s["trackml_score"] == pytest.approx(16 / 27)
    assert math.isnan(s["edge_efficiency"])  # no edges given


def test_duplicates_and_min_track_hits() -> None:
    ev = make_event()
    labels = labels_of(ev)
    cfg = MetricsConfig(min_track_hits=4)  # track 5 (D 3/4) now counts: fake + duplicate
    s = summarize([evaluate_event(ev, labels, config=cfg)], cfg)
    assert s["counts"]["candidate_tracks"] == 5
    assert s["fake_rate"] == pytest.approx(2 / 5)
    assert s["duplicate_rate"] == pytest.approx(1 / 5)


def test_everything_unassigned() -> None:
    ev = make_event()
    s = summarize([evaluate_event(ev, np.full(ev.num_hits, -1))])
    assert s["track_efficiency"] == 0.0
    assert math.isnan(s["fake_rate"])
    assert s["trackml_score"] == 0.0


def test_perfect_labels() -> None:
    ev = make_event()
    pid = ev.particle_id
    labels = np.where(pid == 0, -1, pid)
    s = summarize([evaluate_event(ev, labels)])
    assert s["track_efficiency"] == 1.0
    assert s["fake_rate"] == 0.0
    assert s["duplicate_rate"] == 0.0
    assert s["trackml_score"] == pytest.approx(1.0)


def test_truth_graph_follows_hit_ids() -> None:
    ev = make_event(seed=3)
    t = event_truth_graph(ev)
    assert t.shape == (2, 5 + 5 + 4 + 9)
    assert bool((t[0] > t[1]).all())
    pairs = {(int(ev.hit_id[a]), int(ev.hit_id[b])) for a, b in t.T}
    assert {tuple(sorted(p)) for p in pairs} >= {(1, 2), (5, 6), (26, 27)}
    assert not {tuple(sorted(p)) for p in pairs} & {(6, 7), (17, 18), (1, 3)}


def test_edge_counts() -> None:
    ev = make_event()
    truth = [(a + 1, a) for a in range(1, 6)]            # all of A's truth edges
    extra = [(3, 1), (7, 1), (29, 28), (2, 1), (1, 2)]   # same particle, A-B, noise, dupes
    c = edge_counts(ev, rows_of(ev, truth + extra))
    assert c == {"edges": 8, "true": 6, "truth": 23, "truth_found": 5}
    empty = edge_counts(ev, np.zeros((2, 0), dtype=np.int64))
    assert empty == {"edges": 0, "true": 0, "truth": 23, "truth_found": 0}


def test_edge_metrics_per_stage_and_aggregation() -> None:
    ev = make_event()
    build = rows_of(ev, [(2, 1), (3, 2), (7, 1), (8, 7)])
    scores = np.array([0.9, 0.2, 0.1, 0.8])
    edges = {"build": build, "filter": build[:, [0, 1, 3]], "gnn": gnn_edges(build, scores, 0.5)}
    m = evaluate_event(ev, labels_of(ev), edges)
    s = summarize([m, m])
    assert s["events"] == 2
    assert s["edges"]["build"]["efficiency"] == pytest.approx(3 / 23)
    assert s["edges"]["build"]["purity"] == pytest.approx(3 / 4)
    assert s["edges"]["filter"]["purity"] == 1.0
    assert s["edges"]["build"]["edges_per_event"] == 4
    assert s["edge_efficiency"] == pytest.approx(2 / 23)
    assert s["edge_purity"] == 1.0
    assert s["track_efficiency"] == pytest.approx(2 / 3)


def test_binned_efficiency_and_plots(tmp_path: Path) -> None:
    ev = make_event()
    s = summarize([evaluate_event(ev, labels_of(ev))])
    pt = s["binned"]["pt"]
    assert sum(pt["total"]) == 4  # every particle has >= 5 hits, no pT cut
    assert sum(pt["matched"]) == 3
    radius = s["binned"]["radius"]
    assert sum(radius["total"]) == 3 and sum(radius["matched"]) == 2
    paths = plot_efficiency(s, tmp_path / "plots")
    assert sorted(p.name for p in paths) == ["efficiency_vs_eta.png", "efficiency_vs_pt.png",
                                            "efficiency_vs_radius.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_needs_truth() -> None:
    ev = make_event()
    bare = Event(ev.name, ev.features, ev.hit_id)
    with pytest.raises(InputError, match="no truth"):
        evaluate_event(bare, np.zeros(bare.num_hits, dtype=np.int64))
    with pytest.raises(ValueError, match="labels"):
        evaluate_event(ev, np.zeros(3, dtype=np.int64))


def tracks_of(event: Event, labels: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(labels == t) for t in range(int(labels.max()) + 1)]


def test_tracks_as_hit_lists_score_like_labels() -> None:
    ev = make_event(seed=2)
    labels = labels_of(ev)
    by_labels = evaluate_event(ev, labels)
    by_lists = evaluate_tracks(ev, tracks_of(ev, labels))
    assert by_lists.counts == by_labels.counts
    assert by_lists.trackml_weight == by_labels.trackml_weight
    pd.testing.assert_frame_equal(by_lists.particles, by_labels.particles)
    tracks = by_lists.particles.set_index("particle_id")["track"]
    assert tracks.to_dict() == {11: 0, 22: -1, 33: 3, 44: 4}  # the matched track of each


def test_overlapping_tracks_match_a_particle_once() -> None:
    """Two fitted tracks holding most of D's hits (sharing them) both match D by double
    majority: D counts once (efficiency, TrackML score), the second track as a duplicate."""
    ev = make_event()
    row = {int(h): i for i, h in enumerate(ev.hit_id)}
    d = [row[h] for h in range(18, 28)]
    a = [row[h] for h in range(1, 7)]
    m = evaluate_tracks(ev, [np.array(d[:8]), np.array(a), np.array(d[2:])])
    c = m.counts
    assert (c["tracks"], c["candidate_tracks"], c["fake_tracks"]) == (3, 3, 0)
    assert (c["majority_tracks"], c["duplicate_tracks"]) == (3, 1)
    assert (c["reconstructable"], c["matched_reconstructable"]) == (3, 2)
    assert m.particles.set_index("particle_id")["track"][44] == 0
    assert m.trackml_weight[0] == pytest.approx(8 + 6)  # D's first track, then A
    empty = evaluate_tracks(ev, [])
    assert empty.counts["tracks"] == 0 and empty.counts["matched_reconstructable"] == 0
    with pytest.raises(ValueError, match="outside"):
        evaluate_tracks(ev, [np.array([0, ev.num_hits])])


def test_efficiency_of_several_finders_in_one_figure(tmp_path: Path) -> None:
    ev = make_event()
    one = summarize([evaluate_event(ev, labels_of(ev))])
    pid = ev.particle_id
    assert pid is not None
    perfect = summarize([evaluate_event(ev, np.where(pid == 0, -1, pid))])
    path = plot_efficiency_comparison({"ours": one, "perfect": perfect},
                                      tmp_path / "sub" / "radius.png", title="two finders")
    assert path.exists() and path.stat().st_size > 1000
