"""Events and their files.

One :class:`Event` type for everything the pipeline reads:

- TrackML events: ``event<9 digits>-{hits,particles,truth}.csv`` (a prefix, one of the
  files, or a directory of them);
- ACTS spacepoint CSVs (``measurement_id,x,y,z,var_r,var_z``);
- 3-column feature CSVs (``r/1000, phi/pi, z/1000``, no header), like the shared real events.

All give the pipeline's features, float32 ``[N, 3]`` = (r/1000, phi/pi, z/1000) with r and z
in mm, plus hit ids, and truth when the file has it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from exatrkx.errors import InputError

HIT_COLUMNS = ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"]
PARTICLE_COLUMNS = ["particle_id", "particle_type", "vx", "vy", "vz", "px", "py", "pz", "q", "nhits"]
TRUTH_COLUMNS = ["hit_id", "particle_id", "tx", "ty", "tz", "tpx", "tpy", "tpz", "weight"]
SPACEPOINT_COLUMNS = ["measurement_id", "x", "y", "z"]

_INT_COLUMNS = {"hit_id", "volume_id", "layer_id", "module_id", "particle_id", "particle_type",
                "q", "nhits", "measurement_id"}
_TRACKML_RE = re.compile(r"^(event\d+)-(hits|particles|truth|cells)\.csv$")


@dataclass
class Event:
    """One event: the pipeline's features and, when known, the hits and their truth.

    Attributes:
        name: event name, e.g. ``event000000001`` or ``evt_7``.
        features: float32 ``[N, 3]``: r/1000, phi/pi, z/1000 (r, z in mm).
        hit_id: int64 ``[N]``, the id of each row of ``features``.
        hits: TrackML hits table (``HIT_COLUMNS``), rows aligned with ``features``.
        particles: TrackML particles table (``PARTICLE_COLUMNS``).
        truth: TrackML truth table (``TRUTH_COLUMNS``), rows aligned with ``features``.
    """

    name: str
    features: np.ndarray
    hit_id: np.ndarray
    hits: pd.DataFrame | None = None
    particles: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None

    @property
    def num_hits(self) -> int:
        return int(self.features.shape[0])

    @property
    def has_truth(self) -> bool:
        return self.truth is not None and self.particles is not None

    @property
    def particle_id(self) -> np.ndarray | None:
        """int64 ``[N]`` particle of each hit (0 = noise), or None without truth."""
        if self.truth is None:
            return None
        return self.truth["particle_id"].to_numpy(np.int64)

    @classmethod
    def from_tables(cls, name: str, hits: pd.DataFrame, particles: pd.DataFrame | None = None,
                    truth: pd.DataFrame | None = None) -> Event:
        """Make an event from TrackML tables; truth rows are aligned to the hits."""
        hits = hits.reset_index(drop=True)
        if truth is not None:
            truth = truth.set_index("hit_id").reindex(hits["hit_id"]).reset_index()
            if truth["particle_id"].isna().any():
                missing = hits["hit_id"][truth["particle_id"].isna()].iloc[0]
                raise InputError(f"truth has no row for hit_id {missing}")
            truth = truth.astype({"particle_id": np.int64})[TRUTH_COLUMNS]
        xyz = hits[["x", "y", "z"]].to_numpy(np.float64)
        return cls(name=name, features=features_from_xyz(xyz), hit_id=hits["hit_id"].to_numpy(
            np.int64), hits=hits, particles=particles, truth=truth)


def features_from_xyz(xyz: np.ndarray) -> np.ndarray:
    """Cartesian positions ``[N, 3]`` in mm -> pipeline features float32 ``[N, 3]``."""
    xyz = np.asarray(xyz, dtype=np.float64)
    r = np.hypot(xyz[:, 0], xyz[:, 1])
    phi = np.arctan2(xyz[:, 1], xyz[:, 0])
    return np.stack([r / 1000.0, phi / np.pi, xyz[:, 2] / 1000.0], axis=1).astype(np.float32)


def xyz_from_features(features: np.ndarray) -> np.ndarray:
    """Pipeline features ``[N, 3]`` -> Cartesian positions ``[N, 3]`` in mm."""
    f = np.asarray(features, dtype=np.float64)
    r, phi = f[:, 0] * 1000.0, f[:, 1] * np.pi
    return np.stack([r * np.cos(phi), r * np.sin(phi), f[:, 2] * 1000.0], axis=1)


def check_features(features: np.ndarray, source: str | Path | None = None,
                   first_line: int = 1) -> np.ndarray:
    """Validate a feature array: 2-D, 3 columns, finite. Returns it as float32.

    Raises:
        InputError: naming the source and the first bad line.
    """
    arr = np.asarray(features)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"features must have shape [N, 3], got {list(arr.shape)}", source)
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"features must be numeric, got dtype {arr.dtype}", source)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InputError("non-finite (NaN or infinite) coordinate", source, row + first_line)
    return arr.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- reading

def _read_csv(path: Path, header: bool) -> pd.DataFrame:
    """pandas read with errors turned into InputError naming the file (and line)."""
    try:
        return pd.read_csv(path, header=0 if header else None, skip_blank_lines=True)
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except pd.errors.EmptyDataError:
        raise InputError("file is empty", path) from None
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(f"cannot parse CSV ({str(exc).strip().splitlines()[-1]})", path,
                         int(m.group(1)) if m else None) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise InputError(f"cannot read file ({exc.__class__.__name__})", path) from None


def _check_table(df: pd.DataFrame, columns: list[str], path: Path) -> pd.DataFrame:
    """Required columns present, no missing values, numeric, finite; ints where expected."""
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", path)
    for col in df.columns:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(np.float64, na_value=np.nan))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"column '{col}': missing or non-finite value "
                             f"'{df[col].iloc[row]}' (truncated line?)", path, row + 2)
        df[col] = values.astype(np.int64) if col in _INT_COLUMNS else values.astype(np.float64)
    return df


def read_feature_csv(path: str | Path) -> Event:
    """A headerless 3-column CSV of (r/1000, phi/pi, z/1000), one spacepoint a line."""
    path = Path(path)
    df = _read_csv(path, header=False)
    if df.shape[1] != 3:
        raise InputError(f"expected 3 columns (r/1000, phi/pi, z/1000), found {df.shape[1]}",
                         path, 1)
    values = df.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raw = ",".join("" if pd.isna(v) else str(v) for v in df.iloc[row])
        raise InputError(f"expected 3 finite numbers, got '{raw}'", path, row + 1)
    features = values.astype(np.float32)
    name = path.name.removesuffix(".csv")
    return Event(name=name, features=features, hit_id=np.arange(len(features), dtype=np.int64))


def read_spacepoint_csv(path: str | Path) -> Event:
    """An ACTS spacepoint CSV (``measurement_id,x,y,z,var_r,var_z``)."""
    path = Path(path)
    df = _check_table(_read_csv(path, header=True), SPACEPOINT_COLUMNS, path)
    xyz = df[["x", "y", "z"]].to_numpy(np.float64)
    name = path.name.removesuffix(".csv")
    return Event(name=name, features=features_from_xyz(xyz),
                 hit_id=df["measurement_id"].to_numpy(np.int64))


def read_trackml(prefix: str | Path) -> Event:
    """A TrackML event given its prefix (``.../event000000001``); truth read when present."""
    prefix = Path(prefix)
    hits_path = prefix.with_name(prefix.name + "-hits.csv")
    hits = _check_table(_read_csv(hits_path, header=True), HIT_COLUMNS, hits_path)
    particles = truth = None
    p_path = prefix.with_name(prefix.name + "-particles.csv")
    t_path = prefix.with_name(prefix.name + "-truth.csv")
    if p_path.exists() and t_path.exists():
        particles = _check_table(_read_csv(p_path, header=True), PARTICLE_COLUMNS, p_path)
        truth = _check_table(_read_csv(t_path, header=True), TRUTH_COLUMNS, t_path)
        if len(truth) != len(hits):
            raise InputError(f"truth has {len(truth)} rows but hits has {len(hits)}", t_path)
    try:
        return Event.from_tables(prefix.name, hits, particles, truth)
    except InputError as exc:
        raise InputError(str(exc), t_path) from None


def _is_spacepoint_csv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.__class__.__name__})", path) from None
    names = [c.strip() for c in first.split(",")]
    return "measurement_id" in names or ("x" in names and "y" in names and "z" in names)


def read_event(path: str | Path) -> Event:
    """Read one event from any supported format (see the module docstring)."""
    path = Path(path)
    m = _TRACKML_RE.match(path.name)
    if m:
        return read_trackml(path.with_name(m.group(1)))
    if not path.suffix and path.with_name(path.name + "-hits.csv").exists():
        return read_trackml(path)
    if not path.exists():
        raise InputError("no such file or event prefix", path)
    if _is_spacepoint_csv(path):
        return read_spacepoint_csv(path)
    return read_feature_csv(path)


def _natural_key(path: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def event_sources(path: str | Path) -> list[Path]:
    """The events under ``path``: a directory (sorted naturally), a file or a prefix.

    TrackML events are returned as prefixes (``.../event000000001``); other CSVs (ACTS
    spacepoints, feature files) as files. Our own ``-tracks.csv`` outputs are skipped.
    """
    path = Path(path)
    if path.is_dir():
        sources: dict[str, Path] = {}
        for f in sorted(path.iterdir(), key=_natural_key):
            if not f.is_file() or f.suffix != ".csv" or f.name.endswith("-tracks.csv"):
                continue
            m = _TRACKML_RE.match(f.name)
            if m:
                if m.group(2) == "hits":
                    sources.setdefault(m.group(1), f.with_name(m.group(1)))
            else:
                sources[f.name] = f
        if not sources:
            raise InputError("no event files (*.csv) in directory", path)
        return sorted(sources.values(), key=_natural_key)
    if path.exists() or path.with_name(path.name + "-hits.csv").exists():
        return [path]
    raise InputError("no such file, directory or event prefix", path)


def iter_events(path: str | Path) -> Iterator[Event]:
    """Read every event under ``path`` (see :func:`event_sources`)."""
    for source in event_sources(path):
        yield read_event(source)


# --------------------------------------------------------------------------- writing

def atomic_write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV so that readers never see a partial file (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            df.to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def event_name(number: int) -> str:
    """TrackML event name for an event number: ``event000000042``."""
    return f"event{number:09d}"


def write_trackml(event: Event, outdir: str | Path) -> Path:
    """Write ``<name>-{hits,particles,truth}.csv`` into ``outdir``; returns the prefix."""
    if event.hits is None:
        raise InputError(f"event {event.name} has no hits table to write")
    outdir = Path(outdir)
    prefix = outdir / event.name
    atomic_write_csv(event.hits[HIT_COLUMNS], prefix.with_name(event.name + "-hits.csv"))
    if event.particles is not None:
        atomic_write_csv(event.particles[PARTICLE_COLUMNS],
                         prefix.with_name(event.name + "-particles.csv"))
    if event.truth is not None:
        atomic_write_csv(event.truth[TRUTH_COLUMNS], prefix.with_name(event.name + "-truth.csv"))
    return prefix


def write_tracks(event: Event, labels: np.ndarray, outdir: str | Path) -> Path:
    """Write ``<name>-tracks.csv`` (hit_id, track_id) atomically; returns its path."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (event.num_hits,):
        raise ValueError(f"{event.name}: {labels.shape[0]} labels for {event.num_hits} hits")
    path = Path(outdir) / f"{event.name}-tracks.csv"
    atomic_write_csv(pd.DataFrame({"hit_id": event.hit_id, "track_id": labels}), path)
    return path
