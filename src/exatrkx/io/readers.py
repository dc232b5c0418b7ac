"""Reading events: TrackML, ACTS spacepoint CSVs and 3-column feature CSVs.

- TrackML events: ``event<9 digits>-{hits,particles,truth}.csv`` (a prefix, one of the
  files, or a directory of them);
- ACTS spacepoint CSVs (``measurement_id,x,y,z,var_r,var_z``);
- 3-column feature CSVs (``r/1000, phi/pi, z/1000``, no header), like the shared real events.

All give the pipeline's features plus hit ids, and truth when the file has it. Every problem
with a file raises :class:`~exatrkx.errors.InputError` with a one-line message that names the
file and, where it applies, the 1-based physical line (the header is line 1).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from exatrkx.core.features import FEATURE_COLUMNS, features_from_xyz
from exatrkx.errors import InputError
from exatrkx.io.csvtext import (
    TRACKML_RE,
    BadValue,
    Lines,
    check_finite_features,
    check_unique,
    event_file_name,
    is_number,
    load_lines,
    parse_table,
    show,
    split_rows,
    to_float,
)
from exatrkx.io.event import (
    HIT_COLUMNS,
    PARTICLE_COLUMNS,
    SPACEPOINT_COLUMNS,
    TRUTH_COLUMNS,
    Event,
)


def _features_from_lines(lines: Lines) -> Event:
    rows = split_rows(lines, 0, 3, "r/1000, phi/pi, z/1000")
    columns = list(zip(*rows, strict=True))
    values = []
    first_error: BadValue | None = None
    for name, column in zip(FEATURE_COLUMNS, columns, strict=True):
        try:
            values.append(to_float(column, name, finite=True))
        except BadValue as exc:
            if first_error is None or exc.row < first_error.row:
                first_error = exc
    if first_error is not None:
        if first_error.row == 0 and not any(is_number(v) for v in rows[0]):
            raise InputError(f"expected 3 numbers (r/1000, phi/pi, z/1000) and no header, got "
                             f"{show(lines.text[0])}", lines.path, lines.number[0])
        raise InputError(first_error.reason, lines.path, lines.number[first_error.row])
    with np.errstate(over="ignore"):
        features = np.stack(values, axis=1).astype(np.float32)
    check_finite_features(features, lines, 0)
    return Event(name=event_file_name(lines.path), features=features,
                 hit_id=np.arange(len(features), dtype=np.int64))


def _spacepoints_from_lines(lines: Lines) -> Event:
    df = parse_table(lines, SPACEPOINT_COLUMNS, {"measurement_id": ["hit_id"]})
    id_column = "measurement_id" if "measurement_id" in df.columns else "hit_id"
    ids = df[id_column].to_numpy(np.int64)
    check_unique(ids, id_column, lines)
    features = features_from_xyz(df[["x", "y", "z"]].to_numpy(np.float64))
    check_finite_features(features, lines, 1)
    return Event(name=event_file_name(lines.path), features=features, hit_id=ids)


def _is_spacepoint_header(lines: Lines) -> bool:
    names = {c.strip() for c in lines.text[0].split(",")}
    return "measurement_id" in names or {"x", "y", "z"} <= names


def read_feature_csv(path: str | Path) -> Event:
    """A headerless 3-column CSV of (r/1000, phi/pi, z/1000), one spacepoint a line.

    Hit ids are the row numbers (0-based, blank lines not counted).

    Raises:
        InputError: the file cannot be read or a line is not three finite numbers.
    """
    return _features_from_lines(load_lines(Path(path)))


def read_spacepoint_csv(path: str | Path) -> Event:
    """An ACTS spacepoint CSV (``measurement_id,x,y,z,var_r,var_z``).

    ``hit_id`` is accepted in place of ``measurement_id``; other columns are ignored. A file
    with only its header line gives an event without hits.

    Raises:
        InputError: the file cannot be read, a column is missing, ids repeat or a value is bad.
    """
    return _spacepoints_from_lines(load_lines(Path(path)))


def _read_trackml_table(path: Path, columns: list[str]) -> tuple[pd.DataFrame, Lines]:
    lines = load_lines(path)
    return parse_table(lines, columns), lines


def read_trackml(prefix: str | Path) -> Event:
    """A TrackML event given its prefix (``.../event000000001``).

    The truth and particles files are read when present (each on its own); truth rows are
    aligned to the hits. A hits file with only its header is an event without hits (as the
    simulation writes when nothing reached the detector).

    Raises:
        InputError: a file cannot be read or parsed, hit ids repeat, or truth and hits do
            not describe the same hits.
    """
    prefix = Path(prefix)
    m = TRACKML_RE.match(prefix.name)
    if m:
        prefix = prefix.with_name(m.group(1))
    hits_path = prefix.with_name(prefix.name + "-hits.csv")
    hits, hit_lines = _read_trackml_table(hits_path, HIT_COLUMNS)
    hit_ids = hits["hit_id"].to_numpy(np.int64)
    check_unique(hit_ids, "hit_id", hit_lines)
    features = features_from_xyz(hits[["x", "y", "z"]].to_numpy(np.float64))
    check_finite_features(features, hit_lines, 1)

    particles = truth = None
    p_path = prefix.with_name(prefix.name + "-particles.csv")
    t_path = prefix.with_name(prefix.name + "-truth.csv")
    if p_path.exists():
        particles, p_lines = _read_trackml_table(p_path, PARTICLE_COLUMNS)
        check_unique(particles["particle_id"].to_numpy(np.int64), "particle_id", p_lines)
    if t_path.exists():
        truth, t_lines = _read_trackml_table(t_path, TRUTH_COLUMNS)
        t_ids = truth["hit_id"].to_numpy(np.int64)
        check_unique(t_ids, "hit_id", t_lines)
        unknown = ~np.isin(t_ids, hit_ids)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise InputError(f"hit_id {t_ids[row]} is not in {hits_path.name}", t_path,
                             t_lines.number[1 + row])
        if len(t_ids) != len(hit_ids):
            row = int(np.flatnonzero(~np.isin(hit_ids, t_ids))[0])
            raise InputError(f"no truth row for hit_id {hit_ids[row]} ({hits_path.name} line "
                             f"{hit_lines.number[1 + row]})", t_path)
    return Event.from_tables(prefix.name, hits, particles, truth)


def read_event(path: str | Path) -> Event:
    """Read one event from any supported format (see the module docstring).

    ``path`` is a TrackML prefix, one of a TrackML event's files, an ACTS spacepoint CSV, a
    feature CSV, or a directory that holds exactly one event (use :func:`event_sources` for
    directories of many).

    Raises:
        InputError: the path does not exist or its content cannot be read as an event.
    """
    path = Path(path)
    if path.is_dir():
        sources = event_sources(path)
        if len(sources) != 1:
            raise InputError(f"directory holds {len(sources)} events; give one of them", path)
        path = sources[0]
    if TRACKML_RE.match(path.name):
        return read_trackml(path)
    if not path.is_file():
        if path.name and path.with_name(path.name + "-hits.csv").exists():
            return read_trackml(path)
        if not path.exists():
            raise InputError("no such file or event prefix", path)
    lines = load_lines(path)
    if _is_spacepoint_header(lines):
        return _spacepoints_from_lines(lines)
    return _features_from_lines(lines)


def _natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts ``evt_2`` before ``evt_10``."""
    return tuple((0, int(t)) if t.isdigit() else (1, t)
                 for t in re.split(r"(\d+)", path.name) if t)


def event_sources(path: str | Path) -> list[Path]:
    """The events under ``path``: a directory (sorted naturally), a file or a prefix.

    TrackML events are returned as prefixes (``.../event000000001``); other CSVs (ACTS
    spacepoints, feature files) as files. Our own ``-tracks.csv`` outputs and hidden files
    are skipped.

    Raises:
        InputError: the path does not exist, or a directory holds no event files.
    """
    path = Path(path)
    if path.is_dir():
        try:
            entries = list(path.iterdir())
        except OSError as exc:
            raise InputError(f"cannot list directory ({exc.strerror or exc.__class__.__name__})",
                             path) from None
        sources: dict[str, Path] = {}
        for f in entries:
            if (f.name.startswith(".") or f.suffix != ".csv" or f.name.endswith("-tracks.csv")
                    or not f.is_file()):
                continue
            m = TRACKML_RE.match(f.name)
            if m:
                if m.group(2) == "hits":
                    sources.setdefault(m.group(1), f.with_name(m.group(1)))
            else:
                sources[f.name] = f
        if not sources:
            raise InputError("no event files (*.csv) in directory", path)
        return sorted(sources.values(), key=_natural_key)
    if path.exists() or (path.name and path.with_name(path.name + "-hits.csv").exists()):
        return [path]
    raise InputError("no such file, directory or event prefix", path)


def iter_events(path: str | Path) -> Iterator[Event]:
    """Read every event under ``path`` (see :func:`event_sources`)."""
    for source in event_sources(path):
        yield read_event(source)
