"""Measuring helpers shared by the study and ``benchmarks/bench_service.py``: CPU time of
the client and the server's process group, the weights to time, the events to time."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from exatrkx.io import Event

#: Pipeline settings of the random-init nets timed when no trained weights exist.
RANDOM_RADIUS = 0.05
RANDOM_MAX_NEIGHBOURS = 16


def group_cpu_s(pgid: int) -> float:
    """CPU seconds used so far by the processes of a process group (server and stubs)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def cpu_now(pgid: int) -> float:
    """Client process plus server group CPU seconds."""
    return time.process_time() + group_cpu_s(pgid)


def has_shipped_weights() -> bool:
    """True when trained weights are shipped in ``exatrkx/weights``."""
    from exatrkx.models import default_weights_dir

    return (default_weights_dir() / "metadata.json").is_file()


def weights_or_random(weights: Path | None, scratch: Path,
                      note: Callable[[str], None] | None = None) -> Path | None:
    """The weights to time: ``weights``, else the shipped ones (None), else random-init nets
    written into ``scratch/weights`` (k = 16, radius 0.05)."""
    from exatrkx.config import PipelineConfig
    from exatrkx.models import build_models, save_models

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
    from exatrkx.data import hnl_events_dir
    from exatrkx.io import event_sources, read_event

    if path is None:
        path = hnl_events_dir()
    if path is not None:
        return [read_event(src) for src in event_sources(path)[:n_events]], str(path)
    from exatrkx.simulate import simulate_events

    events = list(simulate_events("hnl", n_events, seed))
    return events, f"{n_events} HNL events simulated on the fly (seed {seed})"
