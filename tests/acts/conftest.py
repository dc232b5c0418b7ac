"""Runners for the chain's tests: a perfect finder and one that fails on purpose."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from exatrkx.core.features import xyz_from_features
from exatrkx.errors import ExatrkxError
from exatrkx.io import event_sources, read_event
from exatrkx.service.runner import EventResult, EventTiming


class TruthRunner:
    """A perfect finder: each spacepoint gets the particle of the event file's hit at its
    position (noise: -1). It checks the chain's fit and scoring, not a pipeline."""

    def __init__(self, *folders: Path) -> None:
        xyz, labels = [], []
        offset = 0
        for folder in folders:
            for source in event_sources(folder):
                ev = read_event(source)
                assert ev.hits is not None and ev.particle_id is not None
                pid = ev.particle_id
                _, dense = np.unique(pid, return_inverse=True)
                xyz.append(ev.hits[["x", "y", "z"]].to_numpy(np.float64))
                labels.append(np.where(pid != 0, dense + offset, -1))
                offset += int(dense.max(initial=0)) + 1
        self.tree = cKDTree(np.concatenate(xyz))
        self.labels = np.concatenate(labels).astype(np.int64)
        self.calls = 0

    def run(self, features: np.ndarray, keep_graph: bool = False) -> EventResult:
        self.calls += 1
        dist, idx = self.tree.query(xyz_from_features(features))
        assert float(np.max(dist, initial=0.0)) < 0.01, "a spacepoint is no hit of the events"
        return EventResult(self.labels[idx], EventTiming(0.0))


class FailingRunner:
    """Delegates to ``runner`` and raises ``error()`` on the calls numbered in ``fail``
    (1-based; a callable ``n -> bool``)."""

    def __init__(self, runner: TruthRunner, fail: Callable[[int], bool],
                 error: Callable[[], Exception]) -> None:
        self.runner, self.fail, self.error = runner, fail, error
        self.calls = 0

    def run(self, features: np.ndarray, keep_graph: bool = False) -> EventResult:
        self.calls += 1
        if self.fail(self.calls):
            raise self.error()
        return self.runner.run(features, keep_graph)


@pytest.fixture(scope="session")
def truth_runner(acts_events: Path, displaced_acts_events: Path) -> TruthRunner:
    return TruthRunner(acts_events, displaced_acts_events)


@pytest.fixture
def failing() -> Callable[..., FailingRunner]:
    return FailingRunner


def unexpected() -> Exception:
    return ZeroDivisionError("a bug")


def exatrkx_error(message: str) -> Callable[[], ExatrkxError]:
    return lambda: ExatrkxError(message)
