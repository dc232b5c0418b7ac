"""Events and their files.

One :class:`Event` type for everything the pipeline reads:

- TrackML events: ``event<9 digits>-{hits,particles,truth}.csv`` (a prefix, one of the
  files, or a directory of them);
- ACTS spacepoint CSVs (``measurement_id,x,y,z,var_r,var_z``);
- 3-column feature CSVs (``r/1000, phi/pi, z/1000``, no header), like the shared real events.

All give the pipeline's features, float32 ``[N, 3]`` = (r/1000, phi/pi, z/1000) with r and z
in mm, plus hit ids, and truth when the file has it.

Every problem with a file raises :class:`~exatrkx.errors.InputError` with a one-line message
that names the file and, where it applies, the 1-based physical line (the header is line 1).
The CSV parsing is done here rather than by pandas so that line numbers stay exact (blank
lines, truncated rows) and no malformed row is silently reinterpreted.
"""

from __future__ import annotations

import codecs
import os
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from exatrkx.errors import InputError

HIT_COLUMNS = ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"]
PARTICLE_COLUMNS = ["particle_id", "particle_type", "vx", "vy", "vz", "px", "py", "pz", "q",
                    "nhits"]
TRUTH_COLUMNS = ["hit_id", "particle_id", "tx", "ty", "tz", "tpx", "tpy", "tpz", "weight"]
SPACEPOINT_COLUMNS = ["measurement_id", "x", "y", "z"]
FEATURE_COLUMNS = ["r/1000", "phi/pi", "z/1000"]

_INT_COLUMNS = {"hit_id", "volume_id", "layer_id", "module_id", "particle_id", "particle_type",
                "q", "nhits", "measurement_id"}
_TRACKML_RE = re.compile(r"^(event\d+)-(hits|particles|truth|cells)\.csv$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
_EXACT_INT_FLOAT = 2.0**53


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
        """Number of hits (rows of ``features``)."""
        return int(self.features.shape[0])

    @property
    def has_truth(self) -> bool:
        """True when both the truth and the particles tables are known."""
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
        """Make an event from TrackML tables; truth rows are aligned to the hits.

        Raises:
            InputError: a required column is missing, hit ids repeat, a hit has no truth
                row, or a coordinate is not finite.
        """
        _require_columns(hits, ["hit_id", "x", "y", "z"], "hits")
        hits = hits.reset_index(drop=True)
        dup = hits["hit_id"].duplicated()
        if dup.any():
            raise InputError(f"hits: hit_id {hits['hit_id'][dup].iloc[0]} appears twice")
        if truth is not None:
            _require_columns(truth, ["hit_id", "particle_id"], "truth")
            dup = truth["hit_id"].duplicated()
            if dup.any():
                raise InputError(f"truth: hit_id {truth['hit_id'][dup].iloc[0]} appears twice")
            missing = ~hits["hit_id"].isin(truth["hit_id"])
            if missing.any():
                raise InputError(f"truth has no row for hit_id {hits['hit_id'][missing].iloc[0]}")
            order = [c for c in TRUTH_COLUMNS if c in truth.columns]
            order += [c for c in truth.columns if c not in order]
            truth = (truth.set_index("hit_id").reindex(hits["hit_id"]).reset_index()
                     .astype({"particle_id": np.int64})[order])
        features = features_from_xyz(hits[["x", "y", "z"]].to_numpy(np.float64))
        bad = ~np.isfinite(features).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"hits: hit_id {hits['hit_id'].iloc[row]} has a non-finite or "
                             "out-of-range coordinate")
        return cls(name=name, features=features, hit_id=hits["hit_id"].to_numpy(np.int64),
                   hits=hits, particles=particles, truth=truth)


def _require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {', '.join(missing)}")


def features_from_xyz(xyz: np.ndarray) -> np.ndarray:
    """Cartesian positions ``[N, 3]`` in mm -> pipeline features float32 ``[N, 3]``.

    Coordinates beyond float32 range give ``inf`` (without a warning); callers that read
    files check the result with :func:`check_features` or an equivalent test.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.hypot(xyz[:, 0], xyz[:, 1])
        phi = np.arctan2(xyz[:, 1], xyz[:, 0])
        return np.stack([r / 1000.0, phi / np.pi, xyz[:, 2] / 1000.0], axis=1).astype(np.float32)


def xyz_from_features(features: np.ndarray) -> np.ndarray:
    """Pipeline features ``[N, 3]`` -> Cartesian positions ``[N, 3]`` in mm."""
    f = np.asarray(features, dtype=np.float64).reshape(-1, 3)
    r, phi = f[:, 0] * 1000.0, f[:, 1] * np.pi
    return np.stack([r * np.cos(phi), r * np.sin(phi), f[:, 2] * 1000.0], axis=1)


def check_features(features: np.ndarray, source: str | Path | None = None,
                   first_line: int = 1) -> np.ndarray:
    """Validate a feature array: 2-D, 3 columns, numeric, finite in float32.

    Args:
        features: the array to check.
        source: file (or other source) named in the error.
        first_line: line number of row 0, for the error message.

    Returns:
        The features as float32.

    Raises:
        InputError: naming the source and the first bad line.
    """
    arr = np.asarray(features)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"features must have shape [N, 3], got {list(arr.shape)}", source)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"features must be numeric, got dtype {arr.dtype}", source)
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float32, copy=False)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InputError("non-finite (NaN, infinite or beyond float32) coordinate", source,
                         row + first_line)
    return out


# --------------------------------------------------------------------------- CSV text

@dataclass(frozen=True)
class _Lines:
    """The non-blank lines of a text file and their 1-based physical line numbers."""

    path: Path
    text: list[str]
    number: list[int]


def _line_at(data: bytes, offset: int) -> int:
    """1-based line number of a byte offset (``\\n``, ``\\r\\n`` and ``\\r`` end lines)."""
    return len(_LINE_BREAK_BYTES.findall(data, 0, offset)) + 1


def _load_lines(path: Path) -> _Lines:
    """Read a UTF-8 text file (a BOM is allowed) and keep its non-blank lines."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a CSV file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc.__class__.__name__})",
                         path) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError("binary data (NUL byte), not a CSV text file", path,
                         _line_at(data, nul))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte 0x{data[exc.start]:02x}); binary file?", path,
                         _line_at(data, exc.start)) from None
    lines: list[str] = []
    numbers: list[int] = []
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if line.strip():
            lines.append(line)
            numbers.append(number)
    if not lines:
        raise InputError("file is empty", path)
    return _Lines(path, lines, numbers)


def _show(value: str, limit: int = 32) -> str:
    """A raw field for a one-line message: quoted, escaped, shortened."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _split_rows(lines: _Lines, first: int, width: int, what: str) -> list[list[str]]:
    """Split lines ``first:`` on commas; every row must have ``width`` fields."""
    rows = [line.split(",") for line in lines.text[first:]]
    for i, row in enumerate(rows):
        if len(row) != width:
            hint = (" (file truncated?)" if i == len(rows) - 1 and len(row) < width else "")
            raise InputError(f"expected {width} comma-separated values ({what}), found "
                             f"{len(row)}{hint}", lines.path, lines.number[first + i])
    return rows


class _BadValue(Exception):
    """A column value that cannot be converted: its row and the reason."""

    def __init__(self, row: int, reason: str):
        super().__init__(reason)
        self.row = row
        self.reason = reason


def _first_bad(values: Sequence[str], convert: Callable[[str], object]) -> int:
    for i, value in enumerate(values):
        try:
            convert(value)
        except (ValueError, OverflowError):
            return i
    return len(values)  # pragma: no cover - only called after a failed conversion


def _to_float(values: Sequence[str], name: str, finite: bool) -> np.ndarray:
    try:
        out = np.array(values, dtype=np.float64)
    except (ValueError, OverflowError):
        row = _first_bad(values, float)
        what = "empty value" if not values[row].strip() else f"{_show(values[row])} is not a number"
        raise _BadValue(row, f"column '{name}': {what}") from None
    if finite:
        bad = ~np.isfinite(out)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _BadValue(row, f"column '{name}': non-finite value {_show(values[row])}")
    return out


def _to_int(values: Sequence[str], name: str) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    # integral numbers written as floats ("3.0") are accepted while they are exact
    as_float = _to_float(values, name, finite=True)
    bad = (np.abs(as_float) > _EXACT_INT_FLOAT) | (as_float != np.round(as_float))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise _BadValue(row, f"column '{name}': {_show(values[row])} is not an integer "
                             "(or is out of int64 range)")
    return as_float.astype(np.int64)


def _to_any(values: Sequence[str], name: str) -> np.ndarray:
    """An extra column: int64 when every value is an integer, else float64, else text."""
    try:
        return np.array(values, dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:  # empty fields are missing values (pandas writes NaN as nothing)
        return _to_float([v if v.strip() else "nan" for v in values], name, finite=False)
    except _BadValue:
        return np.array(values, dtype=object)


def _parse_table(lines: _Lines, required: Sequence[str],
                 alternatives: dict[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Parse a CSV with a header line into a DataFrame of int64/float64 columns.

    Required columns must hold finite numbers (integers for the id-like ones); other columns
    are kept as they are (int64, float64 or text). ``alternatives`` maps a required column to
    other names accepted in its place.

    Raises:
        InputError: a missing or repeated column, a row with the wrong number of values, or
            a bad value; the first bad line of the file is reported.
    """
    names = [c.strip() for c in lines.text[0].split(",")]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"column {_show(name)} appears twice in the header", lines.path,
                             lines.number[0])
        seen.add(name)
    chosen: dict[str, str] = {}
    missing = []
    for col in required:
        options = [col, *(alternatives or {}).get(col, ())]
        found = next((o for o in options if o in seen), None)
        if found is None:
            missing.append(" or ".join(options))
        else:
            chosen[found] = col
    if missing:
        if all(_is_number(n) for n in names):
            raise InputError(f"no header line: expected column names {','.join(required)}",
                             lines.path, lines.number[0])
        raise InputError(f"missing column(s) {', '.join(missing)} (header is "
                         f"{_show(lines.text[0], 80)})", lines.path, lines.number[0])
    rows = _split_rows(lines, 1, len(names), "one per header column")
    if not rows:
        return pd.DataFrame({name: np.zeros(0, np.int64 if chosen.get(name, name) in _INT_COLUMNS
                                            else np.float64) for name in names})
    columns = list(zip(*rows, strict=True))
    data: dict[str, np.ndarray] = {}
    first_error: _BadValue | None = None
    for name, values in zip(names, columns, strict=True):
        try:
            if name in chosen:
                if chosen[name] in _INT_COLUMNS:
                    data[name] = _to_int(values, name)
                else:
                    data[name] = _to_float(values, name, finite=True)
            elif name in _INT_COLUMNS:
                data[name] = _to_int(values, name)
            else:
                data[name] = _to_any(values, name)
        except _BadValue as exc:
            if first_error is None or exc.row < first_error.row:
                first_error = exc
    if first_error is not None:
        raise InputError(first_error.reason, lines.path, lines.number[1 + first_error.row])
    return pd.DataFrame(data)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_unique(ids: np.ndarray, column: str, lines: _Lines, first: int = 1) -> None:
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        earlier = int(np.flatnonzero(ids == ids[row])[0])
        raise InputError(f"{column} {ids[row]} repeats line {lines.number[first + earlier]}",
                         lines.path, lines.number[first + row])


def _check_finite_features(features: np.ndarray, lines: _Lines, first: int) -> None:
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError("coordinate out of range (not finite as float32 features)",
                         lines.path, lines.number[first + row])


def _event_name(path: Path) -> str:
    return path.name.removesuffix(".csv")


# --------------------------------------------------------------------------- reading

def _features_from_lines(lines: _Lines) -> Event:
    rows = _split_rows(lines, 0, 3, "r/1000, phi/pi, z/1000")
    columns = list(zip(*rows, strict=True))
    values = []
    first_error: _BadValue | None = None
    for name, column in zip(FEATURE_COLUMNS, columns, strict=True):
        try:
            values.append(_to_float(column, name, finite=True))
        except _BadValue as exc:
            if first_error is None or exc.row < first_error.row:
                first_error = exc
    if first_error is not None:
        if first_error.row == 0 and not any(_is_number(v) for v in rows[0]):
            raise InputError(f"expected 3 numbers (r/1000, phi/pi, z/1000) and no header, got "
                             f"{_show(lines.text[0])}", lines.path, lines.number[0])
        raise InputError(first_error.reason, lines.path, lines.number[first_error.row])
    with np.errstate(over="ignore"):
        features = np.stack(values, axis=1).astype(np.float32)
    _check_finite_features(features, lines, 0)
    return Event(name=_event_name(lines.path), features=features,
                 hit_id=np.arange(len(features), dtype=np.int64))


def _spacepoints_from_lines(lines: _Lines) -> Event:
    df = _parse_table(lines, SPACEPOINT_COLUMNS, {"measurement_id": ["hit_id"]})
    id_column = "measurement_id" if "measurement_id" in df.columns else "hit_id"
    ids = df[id_column].to_numpy(np.int64)
    _check_unique(ids, id_column, lines)
    features = features_from_xyz(df[["x", "y", "z"]].to_numpy(np.float64))
    _check_finite_features(features, lines, 1)
    return Event(name=_event_name(lines.path), features=features, hit_id=ids)


def _is_spacepoint_header(lines: _Lines) -> bool:
    names = {c.strip() for c in lines.text[0].split(",")}
    return "measurement_id" in names or {"x", "y", "z"} <= names


def read_feature_csv(path: str | Path) -> Event:
    """A headerless 3-column CSV of (r/1000, phi/pi, z/1000), one spacepoint a line.

    Hit ids are the row numbers (0-based, blank lines not counted).

    Raises:
        InputError: the file cannot be read or a line is not three finite numbers.
    """
    return _features_from_lines(_load_lines(Path(path)))


def read_spacepoint_csv(path: str | Path) -> Event:
    """An ACTS spacepoint CSV (``measurement_id,x,y,z,var_r,var_z``).

    ``hit_id`` is accepted in place of ``measurement_id``; other columns are ignored. A file
    with only its header line gives an event without hits.

    Raises:
        InputError: the file cannot be read, a column is missing, ids repeat or a value is bad.
    """
    return _spacepoints_from_lines(_load_lines(Path(path)))


def _read_trackml_table(path: Path, columns: list[str]) -> tuple[pd.DataFrame, _Lines]:
    lines = _load_lines(path)
    return _parse_table(lines, columns), lines


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
    m = _TRACKML_RE.match(prefix.name)
    if m:
        prefix = prefix.with_name(m.group(1))
    hits_path = prefix.with_name(prefix.name + "-hits.csv")
    hits, hit_lines = _read_trackml_table(hits_path, HIT_COLUMNS)
    hit_ids = hits["hit_id"].to_numpy(np.int64)
    _check_unique(hit_ids, "hit_id", hit_lines)
    features = features_from_xyz(hits[["x", "y", "z"]].to_numpy(np.float64))
    _check_finite_features(features, hit_lines, 1)

    particles = truth = None
    p_path = prefix.with_name(prefix.name + "-particles.csv")
    t_path = prefix.with_name(prefix.name + "-truth.csv")
    if p_path.exists():
        particles, p_lines = _read_trackml_table(p_path, PARTICLE_COLUMNS)
        _check_unique(particles["particle_id"].to_numpy(np.int64), "particle_id", p_lines)
    if t_path.exists():
        truth, t_lines = _read_trackml_table(t_path, TRUTH_COLUMNS)
        t_ids = truth["hit_id"].to_numpy(np.int64)
        _check_unique(t_ids, "hit_id", t_lines)
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
    if _TRACKML_RE.match(path.name):
        return read_trackml(path)
    if not path.is_file():
        if path.name and path.with_name(path.name + "-hits.csv").exists():
            return read_trackml(path)
        if not path.exists():
            raise InputError("no such file or event prefix", path)
    lines = _load_lines(path)
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
            m = _TRACKML_RE.match(f.name)
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


# --------------------------------------------------------------------------- writing

def atomic_write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV so that readers never see a partial file (temp file + rename).

    The file gets the usual permissions (``0o666`` less the umask), is flushed to disk
    before the rename, and floats are written exactly (shortest round-trip form).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            df.to_csv(fh, index=False, lineterminator="\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    m = _TRACKML_RE.match(source.name)
    name = m.group(1) if m else _event_name(source)
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
