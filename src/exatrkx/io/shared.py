"""Where the shared real events live (read in place, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that overrides where the shared data folder is.
SHARED_DATA_ENV = "EXATRKX_SHARED_DATA"


def shared_data_dir() -> Path | None:
    """The shared data folder (``../shared/data`` beside the checkout), or None if absent.

    ``$EXATRKX_SHARED_DATA`` wins; otherwise the folder is looked for beside the current
    directory and beside the source tree.
    """
    env = os.environ.get(SHARED_DATA_ENV)
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().parent / "shared" / "data",
                   Path(__file__).resolve().parents[3] / "shared" / "data"]
    for cand in candidates:
        if cand.is_dir():
            return cand
    return None


def hnl_events_dir() -> Path | None:
    """The 100 shared real HNL events (``hnl-lrt-100``), or None if absent."""
    base = shared_data_dir()
    if base is None or not (base / "hnl-lrt-100").is_dir():
        return None
    return base / "hnl-lrt-100"
