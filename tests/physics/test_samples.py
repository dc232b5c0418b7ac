"""Two samples side by side: the distances tell alike from unlike."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exatrkx.core.features import features_from_xyz
from exatrkx.io import Event
from exatrkx.physics.samples import Sample, compare, distances, plot_comparison


def events(seed: int, n: int, scale: float = 1.0) -> list[Event]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        hits = int(rng.integers(200, 400) * scale)
        r = rng.uniform(30, 1000, hits) * scale
        phi = rng.uniform(-np.pi, np.pi, hits)
        z = rng.normal(0, 800, hits)
        xyz = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
        f = features_from_xyz(xyz)
        out.append(Event(f"e{i}", f, np.arange(hits)))
    return out


def test_alike_samples_are_close_and_unlike_ones_far(tmp_path: Path) -> None:
    a = Sample.of("a", events(1, 40))
    b = Sample.of("b", events(2, 40))
    c = Sample.of("c", events(3, 40, scale=1.5))
    same, other = compare(a, b), compare(a, c)
    for key, alike in (("r", 0.05), ("spacepoints", 0.4)):  # 5% KS bounds, 12k / 40 values
        assert same["quantities"][key]["ks"] < alike
        assert other["quantities"][key]["ks"] > same["quantities"][key]["ks"]
        assert other["quantities"][key]["wasserstein_sd"] > 0.3
    assert same["events"] == {"a": 40, "b": 40}
    assert abs(same["quantities"]["spacepoints"]["mean"]["a"]
               - np.mean([e.num_hits for e in events(1, 40)])) < 1e-9
    png = plot_comparison(a, c, other, tmp_path / "cmp.png")
    assert png.stat().st_size > 10_000


def test_distances_of_empty_samples_are_nan() -> None:
    d = distances(np.zeros(0), np.ones(3))
    assert all(v != v for v in d.values())
