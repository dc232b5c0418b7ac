"""Signals as KeyboardInterrupt, so that every phase of a long run cleans up."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[Callable[[], None]]:
    """Turn SIGINT and SIGTERM into KeyboardInterrupt (main thread only), so cleanup runs.

    Yields a check that raises KeyboardInterrupt again once a signal has come: should a
    library swallow the first one (in a callback or a destructor), the study still stops
    at its next phase.
    """
    received: list[int] = []

    def check() -> None:
        if received:
            raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield check
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield check
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
