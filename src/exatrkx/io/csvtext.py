"""Line-exact CSV parsing: every problem names the file and the 1-based physical line.

The parsing is done here rather than by pandas so that line numbers stay exact (blank lines,
truncated rows) and no malformed row is silently reinterpreted.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from exatrkx.errors import InputError

_INT_COLUMNS = {"hit_id", "volume_id", "layer_id", "module_id", "particle_id", "particle_type",
                "q", "nhits", "measurement_id"}
TRACKML_RE = re.compile(r"^(event\d+)-(hits|particles|truth|cells)\.csv$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
_EXACT_INT_FLOAT = 2.0**53


@dataclass(frozen=True)
class Lines:
    """The non-blank lines of a text file and their 1-based physical line numbers."""

    path: Path
    text: list[str]
    number: list[int]


def _line_at(data: bytes, offset: int) -> int:
    """1-based line number of a byte offset (``\\n``, ``\\r\\n`` and ``\\r`` end lines)."""
    return len(_LINE_BREAK_BYTES.findall(data, 0, offset)) + 1


def load_lines(path: Path) -> Lines:
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
    return Lines(path, lines, numbers)


def show(value: str, limit: int = 32) -> str:
    """A raw field for a one-line message: quoted, escaped, shortened."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def split_rows(lines: Lines, first: int, width: int, what: str) -> list[list[str]]:
    """Split lines ``first:`` on commas; every row must have ``width`` fields."""
    rows = [line.split(",") for line in lines.text[first:]]
    for i, row in enumerate(rows):
        if len(row) != width:
            hint = (" (file truncated?)" if i == len(rows) - 1 and len(row) < width else "")
            raise InputError(f"expected {width} comma-separated values ({what}), found "
                             f"{len(row)}{hint}", lines.path, lines.number[first + i])
    return rows


class BadValue(Exception):
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


def to_float(values: Sequence[str], name: str, finite: bool) -> np.ndarray:
    try:
        out = np.array(values, dtype=np.float64)
    except (ValueError, OverflowError):
        row = _first_bad(values, float)
        what = "empty value" if not values[row].strip() else f"{show(values[row])} is not a number"
        raise BadValue(row, f"column '{name}': {what}") from None
    if finite:
        bad = ~np.isfinite(out)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise BadValue(row, f"column '{name}': non-finite value {show(values[row])}")
    return out


def _to_int(values: Sequence[str], name: str) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    # integral numbers written as floats ("3.0") are accepted while they are exact
    as_float = to_float(values, name, finite=True)
    bad = (np.abs(as_float) > _EXACT_INT_FLOAT) | (as_float != np.round(as_float))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadValue(row, f"column '{name}': {show(values[row])} is not an integer "
                             "(or is out of int64 range)")
    return as_float.astype(np.int64)


def _to_any(values: Sequence[str], name: str) -> np.ndarray:
    """An extra column: int64 when every value is an integer, else float64, else text."""
    try:
        return np.array(values, dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:  # empty fields are missing values (pandas writes NaN as nothing)
        return to_float([v if v.strip() else "nan" for v in values], name, finite=False)
    except BadValue:
        return np.array(values, dtype=object)


def parse_table(lines: Lines, required: Sequence[str],
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
            raise InputError(f"column {show(name)} appears twice in the header", lines.path,
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
        if all(is_number(n) for n in names):
            raise InputError(f"no header line: expected column names {','.join(required)}",
                             lines.path, lines.number[0])
        raise InputError(f"missing column(s) {', '.join(missing)} (header is "
                         f"{show(lines.text[0], 80)})", lines.path, lines.number[0])
    rows = split_rows(lines, 1, len(names), "one per header column")
    if not rows:
        return pd.DataFrame({name: np.zeros(0, np.int64 if chosen.get(name, name) in _INT_COLUMNS
                                            else np.float64) for name in names})
    columns = list(zip(*rows, strict=True))
    data: dict[str, np.ndarray] = {}
    first_error: BadValue | None = None
    for name, values in zip(names, columns, strict=True):
        try:
            if name in chosen:
                if chosen[name] in _INT_COLUMNS:
                    data[name] = _to_int(values, name)
                else:
                    data[name] = to_float(values, name, finite=True)
            elif name in _INT_COLUMNS:
                data[name] = _to_int(values, name)
            else:
                data[name] = _to_any(values, name)
        except BadValue as exc:
            if first_error is None or exc.row < first_error.row:
                first_error = exc
    if first_error is not None:
        raise InputError(first_error.reason, lines.path, lines.number[1 + first_error.row])
    return pd.DataFrame(data)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_unique(ids: np.ndarray, column: str, lines: Lines, first: int = 1) -> None:
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        earlier = int(np.flatnonzero(ids == ids[row])[0])
        raise InputError(f"{column} {ids[row]} repeats line {lines.number[first + earlier]}",
                         lines.path, lines.number[first + row])


def check_finite_features(features: np.ndarray, lines: Lines, first: int) -> None:
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError("coordinate out of range (not finite as float32 features)",
                         lines.path, lines.number[first + row])


def event_file_name(path: Path) -> str:
    return path.name.removesuffix(".csv")
