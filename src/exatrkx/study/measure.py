"""What the study and the benchmarks time: the weights and the events."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from exatrkx.config import PipelineConfig
from exatrkx.core.models import build_models, default_weights_dir, save_models
from exatrkx.io import Event, event_sources, read_event
from exatrkx.io.shared import hnl_events_dir
from exatrkx.sim.simulate import simulate_events

#: Pipeline settings of the random-init nets timed when no trained weights exist.
RANDOM_RADIUS = 0.05
RANDOM_MAX_NEIGHBOURS = 16


def has_shipped_weights() -> bool:
    """True when trained weights are shipped in ``exatrkx/weights``."""
    return (default_weights_dir() / "metadata.json").is_file()


def weights_or_random(weights: Path | None, scratch: Path,
                      note: Callable[[str], None] | None = None) -> Path | None:
    """The weights to time: ``weights``, else the shipped ones (None), else random-init nets
    written into ``scratch/weights`` (k = 16, radius 0.05)."""
    if weights is not None or has_shipped_weights():
        return weights
    (note or (lambda line: print(line, file=sys.stderr)))(
        "note: no trained weights shipped; timing random-init nets (k=16)")
    cfg = PipelineConfig(max_neighbours=RANDOM_MAX_NEIGHBOURS, radius=RANDOM_RADIUS)
    return save_models(build_models(cfg, seed=0), cfg, scratch / "weights")


def load_events(path: Path | None, n_events: int, seed: int = 1) -> tuple[list[Event], str]:
    """The events to time and where they came from.

    Args:
        path: an event folder/file (None: the shared HNL events, else simulated HNL events).
        n_events: at most this many.
        seed: seed of simulated events.

    Raises:
        InputError: the path holds no readable events.
    """
    if path is None:
        path = hnl_events_dir()
    if path is not None:
        return [read_event(src) for src in event_sources(path)[:n_events]], str(path)
    events = list(simulate_events("hnl", n_events, seed))
    return events, f"{n_events} HNL events simulated on the fly (seed {seed})"
