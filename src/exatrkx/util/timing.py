"""One record of a timed run: per-event latencies, the wall time, and what follows from them.

Every measurement of the package (study phases, network and scale-out scans, load tests)
keeps a :class:`TimedRun` and reports it with the same field names:
``events``, ``wall_s``, ``throughput_eps``, ``latency_mean_ms``, ``latency_p50_ms``,
``latency_p95_ms`` (and ``latency_p99_ms``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100, linear interpolation); NaN for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) \
        else math.nan


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; NaN for no values."""
    vals = list(values)
    return float(statistics.fmean(vals)) if vals else math.nan


@dataclass
class TimedRun:
    """Events timed in one run.

    Attributes:
        latencies_ms: client-side ms of every event that got its answer.
        wall_s: wall time of the run (for throughput; 0 when events were timed one by one).
        failures: events that got no answer.
    """

    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    failures: int = 0

    def add(self, ms: float) -> None:
        """One more answered event."""
        self.latencies_ms.append(float(ms))

    def extend(self, other: TimedRun) -> None:
        """Add another run's events and wall time."""
        self.latencies_ms += other.latencies_ms
        self.wall_s += other.wall_s
        self.failures += other.failures

    @property
    def events(self) -> int:
        """Answered events."""
        return len(self.latencies_ms)

    @property
    def throughput_eps(self) -> float:
        """Answered events per second of wall time (NaN without a wall time)."""
        return self.events / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def latency_mean_ms(self) -> float:
        return mean(self.latencies_ms)

    def latency_ms(self, q: float) -> float:
        """The ``q``-th percentile of the latencies (ms)."""
        return percentile(self.latencies_ms, q)

    def summary(self) -> dict[str, float | int]:
        """The run's figures under the package's standard names."""
        return {"events": self.events, "failures": self.failures, "wall_s": self.wall_s,
                "throughput_eps": self.throughput_eps,
                "latency_mean_ms": self.latency_mean_ms,
                "latency_p50_ms": self.latency_ms(50), "latency_p95_ms": self.latency_ms(95),
                "latency_p99_ms": self.latency_ms(99)}
