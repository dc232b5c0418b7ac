"""Errors the command line turns into one-line messages (exit code 2)."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input from a user: a file, a value or a request that cannot be used.

    The message names the problem and, where it applies, the file and line.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = None if path is None else str(path)
        self.line = line
