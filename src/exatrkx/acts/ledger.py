"""What happened to each event of a chain run, shared by the algorithms of one sequencer.

ACTS runs the algorithms of an event one after the other (one thread); each of ours notes
here what it did. An algorithm that cannot finish an event records the error and returns
ACTS' ``SKIP``, which ends that event (the following algorithms do not see it) and lets the
next one start; an unreachable server stops the run's use of the server: every later event
is left for ``--resume``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exatrkx.errors import ExatrkxError, ServerUnavailable
from exatrkx.io import Event


@dataclass
class EventState:
    """One event while the sequencer holds it.

    Attributes:
        number: ACTS' event number (the index into the run's sources).
        source: the event's path (a TrackML prefix).
        event: the event read from it (with truth).
        order: measurement index -> row of ``event`` (measurements are in geometry-id order).
        marks: ``(name, perf_counter seconds)`` in the order the algorithms passed.
        notes: per finder, what its own algorithm measured (``{"gnn": {"request_ms": ...}}``).
    """

    number: int
    source: Path
    event: Event | None = None
    order: np.ndarray | None = None
    marks: list[tuple[str, float]] = field(default_factory=list)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        """The block ``name`` ends now."""
        self.marks.append((name, time.perf_counter()))

    def blocks_ms(self) -> dict[str, float]:
        """Milliseconds of each block: from the previous mark to its own."""
        return {name: (t - self.marks[i - 1][1]) * 1e3
                for i, (name, t) in enumerate(self.marks) if i > 0}


@dataclass
class EventLedger:
    """The events of one run and what became of them.

    Attributes:
        sources: event paths, indexed by ACTS' event number.
        states: events in flight (begun, not yet finished or failed).
        finished: event numbers whose results were collected.
        errors: ``(event number, error)`` of events that failed, in order.
        not_attempted: event numbers left out after the server went away.
        stopped: the error that made the run stop using the server.
    """

    sources: list[Path]
    states: dict[int, EventState] = field(default_factory=dict)
    finished: list[int] = field(default_factory=list)
    errors: list[tuple[int, ExatrkxError]] = field(default_factory=list)
    not_attempted: list[int] = field(default_factory=list)
    stopped: ServerUnavailable | None = None

    def begin(self, number: int) -> EventState:
        """A new event enters the sequencer (its ``start`` mark is set)."""
        state = EventState(number, self.sources[number])
        state.mark("start")
        self.states[number] = state
        return state

    def state(self, number: int) -> EventState:
        return self.states[number]

    def fail(self, number: int, error: ExatrkxError) -> None:
        """The event cannot be finished; an unreachable server also stops the run's use
        of the server."""
        self.states.pop(number, None)
        self.errors.append((number, error))
        if isinstance(error, ServerUnavailable) and self.stopped is None:
            self.stopped = error

    def skip(self, number: int) -> None:
        """The event is left out (the server went away before it)."""
        self.states.pop(number, None)
        self.not_attempted.append(number)

    def finish(self, number: int) -> None:
        self.states.pop(number, None)
        self.finished.append(number)

    def unaccounted(self) -> list[int]:
        """Events neither finished, failed nor left out (ACTS stopped in or before them)."""
        done = set(self.finished) | {n for n, _ in self.errors} | set(self.not_attempted)
        return [n for n in range(len(self.sources)) if n not in done]
