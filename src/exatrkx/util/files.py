"""Atomic file writes: readers never see a partial file."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | Path, write: Callable[[IO[Any]], object], *,
                 binary: bool = False, sync: bool = True) -> Path:
    """Write ``path`` through a temporary file in the same folder and a rename.

    The folder is created; the file gets the usual permissions (``0o666`` less the umask).
    On any failure the temporary file is removed and the old file (if any) stays.

    Args:
        path: the file to write.
        write: called with the open temporary file (text, UTF-8, ``newline=""``; or binary).
        binary: open the temporary file in binary mode.
        sync: flush it to disk before the rename.

    Returns:
        ``path``.
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
        fh: IO[Any]
        fh = (os.fdopen(fd, "wb") if binary
              else os.fdopen(fd, "w", newline="", encoding="utf-8"))
        with fh:
            write(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str, sync: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(text), sync=sync)
