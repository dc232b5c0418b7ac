"""Writing events and tracks (atomically: a file is complete or absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from exatrkx.errors import InputError
from exatrkx.io.csvtext import TRACKML_RE, event_file_name
from exatrkx.io.event import HIT_COLUMNS, PARTICLE_COLUMNS, TRUTH_COLUMNS, Event
from exatrkx.util.files import atomic_write


def atomic_write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV so that readers never see a partial file (floats in shortest
    round-trip form)."""
    atomic_write(path, lambda fh: df.to_csv(fh, index=False, lineterminator="\n"))


def event_name(number: int) -> str:
    """TrackML event name for an event number: ``event000000042``."""
    return f"event{number:09d}"


def _standard_first(df: pd.DataFrame, columns: list[str], what: str, name: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"event {name}: {what} table lacks column(s) {', '.join(missing)}")
    return df[columns + [c for c in df.columns if c not in columns]]


def write_trackml(event: Event, outdir: str | Path) -> Path:
    """Write ``<name>-{hits,particles,truth}.csv`` into ``outdir``; returns the prefix.

    The standard columns come first, in TrackML order; any extra columns follow, so that
    :func:`read_trackml` gives back the same tables.

    Raises:
        InputError: the event has no hits table or a table lacks a standard column.
    """
    if event.hits is None:
        raise InputError(f"event {event.name} has no hits table to write")
    outdir = Path(outdir)
    prefix = outdir / event.name
    tables = [("hits", event.hits, HIT_COLUMNS), ("particles", event.particles, PARTICLE_COLUMNS),
              ("truth", event.truth, TRUTH_COLUMNS)]
    ordered = [(what, _standard_first(df, cols, what, event.name))
               for what, df, cols in tables if df is not None]
    for what, df in ordered:
        atomic_write_csv(df, outdir / f"{event.name}-{what}.csv")
    return prefix


def tracks_path(outdir: str | Path, source: str | Path) -> Path:
    """Where :func:`write_tracks` puts the tracks of the event read from ``source`` (a path
    from :func:`event_sources`): ``<outdir>/<event name>-tracks.csv``."""
    source = Path(source)
    m = TRACKML_RE.match(source.name)
    name = m.group(1) if m else event_file_name(source)
    return Path(outdir) / f"{name}-tracks.csv"


def write_tracks(event: Event, labels: np.ndarray, outdir: str | Path) -> Path:
    """Write ``<name>-tracks.csv`` (hit_id, track_id) atomically; returns its path."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (event.num_hits,):
        raise ValueError(f"{event.name}: labels of shape {labels.shape} for "
                         f"{event.num_hits} hits")
    path = Path(outdir) / f"{event.name}-tracks.csv"
    atomic_write_csv(pd.DataFrame({"hit_id": event.hit_id, "track_id": labels}), path)
    return path
