"""JSON that every parser reads: NaN and infinities become ``null``.

Python's :mod:`json` writes ``NaN`` and ``Infinity`` by default, which is not JSON. Every
JSON the package prints or writes goes through :func:`jsonable` (or :func:`dumps`, which
refuses anything non-standard that slipped through).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types, recursively.

    NaN and infinities -> None; numpy scalars and arrays -> Python numbers and lists;
    dataclasses -> dicts; enums -> their values; paths -> strings; tuples -> lists;
    dict keys -> strings.
    """
    if isinstance(value, dict):
        return {str(jsonable(k)) if not isinstance(k, str) else k: jsonable(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Standard JSON text of ``value`` (see :func:`jsonable`)."""
    return json.dumps(jsonable(value), allow_nan=False, **kwargs)
