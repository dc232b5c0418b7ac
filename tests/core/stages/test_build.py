"""Fixed-radius neighbour graph: known answers and backend equality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exatrkx.core.stages.build import build_edges


def reference_edges(x: np.ndarray, radius: float, k: int) -> np.ndarray:
    """Brute force of the documented definition (float32, column-ordered sums)."""
    x = x.astype(np.float32)
    n = len(x)
    r2 = np.float32(radius) * np.float32(radius)
    pairs = set()
    for i in range(n):
        diff = x[i][None, :] - x
        d2 = diff[:, 0] * diff[:, 0]
        for c in range(1, x.shape[1]):
            d2 = d2 + diff[:, c] * diff[:, c]
        cand = [(d2[j], j) for j in range(n) if j != i and d2[j] <= r2]
        for _, j in sorted(cand)[:k]:
            pairs.add((max(i, j), min(i, j)))
    if not pairs:
        return np.zeros((2, 0), dtype=np.int64)
    return np.array(sorted(pairs), dtype=np.int64).T


def edges_of(points: list[list[float]], radius: float, k: int, backend: str) -> list[list[int]]:
    x = torch.tensor(points, dtype=torch.float32)
    return build_edges(x, radius, k, backend).tolist()


@pytest.mark.parametrize("backend", ["kdtree", "torch", "auto"])
def test_known_distances(backend: str) -> None:
    # on a line: 0-1 at exactly the radius (kept), 2-3 close, the rest too far
    pts = [[0.0, 0.0], [1.0, 0.0], [2.5, 0.0], [2.625, 0.0]]
    assert edges_of(pts, 1.0, 10, backend) == [[1, 3], [0, 2]]


@pytest.mark.parametrize("backend", ["kdtree", "torch"])
def test_k_nearest_union(backend: str) -> None:
    # star around hit 0: with k = 1 every leaf picks the centre, the centre picks hit 1
    pts = [[0, 0], [0.1, 0], [0, 0.2], [-0.3, 0], [0, -0.4]]
    assert edges_of(pts, 1.0, 1, backend) == [[1, 2, 3, 4], [0, 0, 0, 0]]
    # k = 2: second choices 1->2, 2->1, 3->2 (0.36 < 0.4), 4->1 (0.41 < 0.5)
    assert edges_of(pts, 1.0, 2, backend) == [[1, 2, 2, 3, 3, 4, 4], [0, 0, 1, 0, 2, 0, 1]]


@pytest.mark.parametrize("backend", ["kdtree", "torch"])
def test_ties_go_to_the_smaller_index(backend: str) -> None:
    # hit 1 is 1.0 from hits 0 and 2 and picks hit 0; 0 and 2 have nearer partners
    pts = [[0.0], [1.0], [2.0], [-0.5], [2.5]]
    assert edges_of(pts, 1.0, 1, backend) == [[1, 3, 4], [0, 0, 2]]


@pytest.mark.parametrize("backend", ["kdtree", "torch"])
@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single(backend: str, n: int) -> None:
    out = build_edges(torch.zeros(n, 8), 0.5, 10, backend)
    assert out.shape == (2, 0)
    assert out.dtype == torch.int64


def test_bad_backend() -> None:
    with pytest.raises(ValueError, match="backend"):
        build_edges(torch.zeros(3, 2), 0.5, 4, "faiss")


def _datasets() -> list[tuple[str, np.ndarray, float, int]]:
    rng = np.random.default_rng(7)
    out = []
    out.append(("uniform", rng.random((600, 3)), 0.15, 8))
    out.append(("uniform-8d-unit", _unit(rng.normal(size=(700, 8))), 0.6, 16))
    centres = rng.random((12, 4))
    blobs = centres[rng.integers(0, 12, 900)] + rng.normal(scale=0.02, size=(900, 4))
    out.append(("clustered", blobs, 0.05, 10))
    out.append(("clustered-dense", blobs, 0.3, 5))
    grid = np.round(rng.random((500, 2)) * 5) / 5  # many exact duplicates and ties
    out.append(("grid-ties", grid, 0.2, 3))
    out.append(("grid-ties-many", grid, 0.45, 40))
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(("name", "x", "radius", "k"), _datasets(),
                         ids=[d[0] for d in _datasets()])
def test_backends_agree_with_definition(name: str, x: np.ndarray, radius: float, k: int) -> None:
    t = torch.from_numpy(x.astype(np.float32))
    a = build_edges(t, radius, k, "kdtree")
    b = build_edges(t, radius, k, "torch")
    assert torch.equal(a, b), name
    ref = reference_edges(x, radius, k)
    np.testing.assert_array_equal(a.numpy(), ref)
    assert a.shape[1] > 0
    assert bool((a[0] > a[1]).all())


def test_canonical_sorted_unique() -> None:
    rng = np.random.default_rng(3)
    e = build_edges(torch.from_numpy(rng.random((300, 3)).astype(np.float32)), 0.2, 6)
    key = e[0] * 300 + e[1]
    assert bool((key[1:] > key[:-1]).all())
    assert bool((e[0] != e[1]).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:  # pragma: no cover - GPU hosts only
    for _, x, radius, k in _datasets():
        t = torch.from_numpy(x.astype(np.float32))
        cpu = build_edges(t, radius, k, "kdtree")
        gpu = build_edges(t.cuda(), radius, k, "auto")
        assert gpu.device.type == "cuda"
        assert torch.equal(cpu, gpu.cpu())


@pytest.mark.parametrize("backend", ["kdtree", "torch"])
def test_exact_duplicates_need_every_candidate(backend: str) -> None:
    # 30 copies of one point and 30 of another: every hit ties with 29 others at d2 = 0,
    # so a list of k + slack candidates is never provably complete (the kdtree asks again
    # until it has all hits); ties go to the smaller index
    x = np.repeat(np.array([[0.0, 0.0], [0.05, 0.0]]), 30, axis=0)
    got = build_edges(torch.from_numpy(x.astype(np.float32)), 0.1, 3, backend)
    np.testing.assert_array_equal(got.numpy(), reference_edges(x, 0.1, 3))


def test_collapsed_embedding_matches_the_definition() -> None:
    # an untrained net maps every hit into a tiny ball: all pairs within the radius, the
    # distances far below the torch backend's absolute tolerance
    rng = np.random.default_rng(11)
    x = _unit(np.ones((400, 8)) + rng.normal(scale=1e-3, size=(400, 8)))
    t = torch.from_numpy(x.astype(np.float32))
    a = build_edges(t, 0.1, 6, "kdtree")
    assert torch.equal(a, build_edges(t, 0.1, 6, "torch"))
    np.testing.assert_array_equal(a.numpy(), reference_edges(x, 0.1, 6))


def test_queries_in_chunks_give_the_same_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    import exatrkx.core.stages.build as build

    rng = np.random.default_rng(5)
    t = torch.from_numpy(_unit(rng.normal(size=(800, 4))).astype(np.float32))
    whole = build_edges(t, 0.8, 12, "kdtree")  # about 80 neighbours: dense queries
    monkeypatch.setattr(build, "CHUNK_ELEMENTS", 256)  # 256 // 21 = 12 hits per query
    assert torch.equal(build_edges(t, 0.8, 12, "kdtree"), whole)
    assert torch.equal(whole, build_edges(t, 0.8, 12, "torch"))
