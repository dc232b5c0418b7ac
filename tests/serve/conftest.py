"""Fixtures of the serving tests: random-init weights, a repository, a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from exatrkx.config import PipelineConfig
from exatrkx.core.models import Nets, build_models, save_models
from exatrkx.serve import RepositoryConfig, ServerConfig, TritonServer, write_repository

#: The test server refuses events above this many hits.
TEST_MAX_HITS = 4000
#: Key of the test servers' restricted APIs (the session sets ``$EXATRKX_API_KEY`` to it).
TEST_API_KEY = "exatrkx-test-key-0123456789"


def tuned_config(nets: Nets, events: list[np.ndarray]) -> PipelineConfig:
    """Settings under which random-init nets still make tracks: a radius giving a few
    neighbours per hit and the cuts at the median scores, so every net decides labels."""
    import dataclasses

    from exatrkx.core.stages.build import build_edges
    from exatrkx.core.stages.embed import embed
    from exatrkx.core.stages.filter import filter_edges
    from exatrkx.core.stages.gnn import classify_edges

    x = torch.from_numpy(max(events, key=len))
    emb = embed(nets.embed, x)
    d = torch.cdist(emb, emb)
    radius = float(torch.quantile(d[d > 0].flatten()[:200_000], 4.0 / len(x)))
    cfg = dataclasses.replace(PipelineConfig(), radius=radius, max_neighbours=16)
    edges = build_edges(emb, cfg.radius, cfg.max_neighbours)
    _, scores = filter_edges(nets.filter, x, edges, 0.0)
    cfg = dataclasses.replace(cfg, filter_cut=float(scores.median()))
    kept, _ = filter_edges(nets.filter, x, edges, cfg.filter_cut)
    gnn = classify_edges(nets.gnn, x, kept)
    return dataclasses.replace(cfg, gnn_cut=float(gnn.median()))


@pytest.fixture(scope="session")
def serve_config(events: list[np.ndarray]) -> PipelineConfig:
    """Pipeline settings of the test weights (see :func:`tuned_config`)."""
    return tuned_config(build_models(PipelineConfig(), seed=3), events)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory, serve_config: PipelineConfig) -> Path:
    """Random-init weights written by ``save_models`` (trained weights come later)."""
    out = tmp_path_factory.mktemp("weights")
    return save_models(build_models(serve_config, seed=3), serve_config, out)


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory, weights_dir: Path) -> Path:
    """A model repository of the test weights (with its libtorch variant beside it)."""
    base = tmp_path_factory.mktemp("repo")
    return write_repository(base / "models", weights_dir,
                            RepositoryConfig(max_hits=TEST_MAX_HITS))


def free_ports_config(**kwargs: object) -> ServerConfig:
    """Free ports, the test key (unless ``api_key`` is given)."""
    settings: dict[str, object] = {"api_key": TEST_API_KEY, **kwargs}
    return ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=120,
                        **settings)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def server_config() -> object:
    """``server_config(**settings)`` -> :func:`free_ports_config`."""
    return free_ports_config


@pytest.fixture(scope="session", autouse=True)
def client_api_key() -> Iterator[str]:
    """``$EXATRKX_API_KEY`` set to the test servers' key for the whole session."""
    from exatrkx.contract import API_KEY_ENV

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(API_KEY_ENV, TEST_API_KEY)
        yield TEST_API_KEY


@pytest.fixture(scope="session")
def server(repository: Path, client_api_key: str) -> Iterator[TritonServer]:
    """One real Triton server for the session, on free ports, with the test key."""
    with TritonServer(repository, free_ports_config()) as srv:
        yield srv


def synthetic_event(n: int, seed: int) -> np.ndarray:
    """Hits on helix-like tracks: features (r/1000, phi/pi, z/1000), float32 ``[n, 3]``."""
    rng = np.random.default_rng(seed)
    radii = np.array([0.032, 0.072, 0.116, 0.172, 0.26, 0.36, 0.5, 0.66, 0.82, 1.02])
    tracks = -(-n // len(radii))
    phi0 = rng.uniform(-1, 1, tracks)
    curv = rng.normal(0, 0.05, tracks)
    eta = rng.uniform(-0.8, 0.8, tracks)
    r = np.tile(radii, tracks)[:n]
    t = np.repeat(np.arange(tracks), len(radii))[:n]
    phi = phi0[t] + curv[t] * r + rng.normal(0, 1e-3, n)
    phi = (phi + 1) % 2 - 1
    z = r * np.sinh(eta[t]) + rng.normal(0, 1e-3, n)
    return np.stack([r, phi, z], axis=1).astype(np.float32)


def stub_processes(marker: str) -> list[int]:
    """Pids of backend stubs whose command line mentions ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "triton_python_backend_stub" in cmd and marker in cmd:
            pids.append(int(entry.name))
    return [p for p in pids if p != os.getpid()]


@pytest.fixture(scope="session")
def events(request: pytest.FixtureRequest) -> list[np.ndarray]:
    """A few events: synthetic ones, plus the smallest shared real ones when present."""
    evs = [synthetic_event(n, seed) for seed, n in enumerate((2, 37, 150, 400))]
    from exatrkx.io.readers import read_feature_csv
    from exatrkx.io.shared import hnl_events_dir

    real = hnl_events_dir()
    if real is not None:
        files = sorted(real.glob("evt_*.csv"), key=lambda p: p.stat().st_size)[:3]
        evs += [read_feature_csv(f).features for f in files]
    return evs


@pytest.fixture(scope="session")
def find_stubs() -> object:
    """``find_stubs(marker)`` -> pids of backend stubs whose command line has ``marker``."""
    return stub_processes
