"""The pipeline's hit features and their checks (the encoding every stage and file uses).

Features are float32 ``[N, 3]`` = (r/1000, phi/pi, z/1000) with r and z in mm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exatrkx.errors import InputError

#: Names of the three feature columns.
FEATURE_COLUMNS = ["r/1000", "phi/pi", "z/1000"]


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
