"""What the study measured: one record per timed event, one result per option and per scan
point, and the whole study's result."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from exatrkx.contract import FLOOR_MODELS, Option, Protocol
from exatrkx.service.stats import ModelStats, RawStats, stats_delta
from exatrkx.service.tls import ClientTls
from exatrkx.study.config import StudyConfig
from exatrkx.study.simulation import SimulationCheck
from exatrkx.util.procfs import group_cpu_s
from exatrkx.util.timing import TimedRun

#: Floor rows of the main run (``option`` column of the records), by floor key.
FLOOR_ROWS = {key: f"floor_{key}" for key in FLOOR_MODELS}


@dataclass(frozen=True)
class Endpoint:
    """A running server as the study sees it.

    Attributes:
        grpc_url: gRPC ``host:port``.
        http_url: HTTP ``host:port``.
        pgid: the server's process group (CPU accounting); None for an external server.
        instances: model instances per model.
        batching: the repository's dynamic batching on.
        metrics_url: the Prometheus endpoint (None: not known).
        device: where its models compute (``cpu``, ``cuda``).
        api_key: the server's key (None: ``$EXATRKX_API_KEY``).
        tls: TLS of its gRPC endpoint as the client sees it (None: plain text).
    """

    grpc_url: str
    http_url: str
    pgid: int | None = None
    instances: int = 1
    batching: bool = False
    metrics_url: str | None = None
    device: str = "cpu"
    api_key: str | None = None
    tls: ClientTls | None = None

    def url(self, protocol: Protocol) -> str:
        return self.grpc_url if protocol == "grpc" else self.http_url

    def client(self, protocol: Protocol) -> dict[str, Any]:
        """Keyword arguments of ``make_runner`` and ``ClientConfig``: the key, and TLS for
        gRPC."""
        return {"api_key": self.api_key, "tls": self.tls if protocol == "grpc" else None}

    def cpu_s(self) -> float:
        """CPU seconds of the server and its stubs so far (NaN for an external server)."""
        return float("nan") if self.pgid is None else group_cpu_s(self.pgid)


@dataclass
class Record:
    """One timed event (a row of ``timings.csv``)."""

    phase: str
    option: str
    transport: str
    concurrency: int
    instances: int
    batching: bool
    repeat: int
    event: str
    hits: int
    ms: float
    stages: dict[str, float] = field(default_factory=dict)
    request_ms: float = 0.0
    requests: int = 0


@dataclass
class OptionRun:
    """One option on one transport in the main run.

    Attributes:
        timed: ms per event, every event of every pass.
        per_event: event number -> ms of each of its passes (for paired comparisons: the
            options ran interleaved per event).
        stage_sums: client-side ms per stage, summed over the events.
        request_ms: client-side ms in requests, summed.
        stats: raw server counters accumulated over the option's blocks.
        cpu_client_s: client CPU seconds in the option's blocks.
        cpu_server_s: server CPU seconds in the option's blocks.
        mismatched: events whose labels differ from option 0.
    """

    timed: TimedRun = field(default_factory=TimedRun)
    stage_sums: dict[str, float] = field(default_factory=dict)
    request_ms: float = 0.0
    stats: RawStats = field(default_factory=dict)
    cpu_client_s: float = 0.0
    cpu_server_s: float = 0.0
    mismatched: set[str] = field(default_factory=set)
    per_event: dict[int, list[float]] = field(default_factory=dict)

    @property
    def events(self) -> int:
        """Events timed."""
        return self.timed.events

    def add(self, event: int, ms: float) -> None:
        """One timed run of event number ``event`` (its repeats in order)."""
        self.timed.add(ms)
        self.per_event.setdefault(event, []).append(float(ms))

    def repeats(self, events: int) -> list[list[float]]:
        """Per event ``0..events-1``, the ms of its repeats in order."""
        return [self.per_event.get(i, []) for i in range(events)]

    def server(self) -> dict[str, ModelStats]:
        """Triton's per-request averages per model in this option's blocks."""
        return stats_delta({}, self.stats)


@dataclass
class ScanPoint:
    """Throughput and latency of one option at one concurrency on one server setting.

    ``passes_eps``: the throughput of each pass; the points of a server setting run
    interleaved, one pass of each point after the other.
    """

    phase: str
    option: Option
    transport: str
    concurrency: int
    instances: int
    batching: bool
    timed: TimedRun = field(default_factory=TimedRun)
    cpu_client_s: float = 0.0
    cpu_server_s: float = 0.0
    mismatched: int = 0
    stats: RawStats = field(default_factory=dict)
    passes_eps: list[float] = field(default_factory=list)

    @property
    def events(self) -> int:
        return self.timed.events

    @property
    def throughput_eps(self) -> float:
        """Events per second: the median over the passes (each pass a run over every event)."""
        if self.passes_eps:
            return float(statistics.median(self.passes_eps))
        return self.timed.throughput_eps


@dataclass
class PerfRun:
    """perf_analyzer's results (or why there are none)."""

    available: bool = False
    reason: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class StudyResult:
    """Everything the study measured; :mod:`exatrkx.study.report` turns it into the report.

    Attributes:
        device: where the served models computed (``cpu`` or ``cuda``; ``unknown`` for a
            given server).
        batched_models: models the repository gave Triton's dynamic batcher in its batching
            variant.
        main_setting: ``(instances, dynamic batching)`` of the main server.
        scan: the throughput scan's points on the main server (the ``concurrency`` section).
        server_scan: every point of the throughput scan, every server setting.
    """

    config: StudyConfig
    main_setting: tuple[int, bool] = (1, True)
    origin: str = ""
    event_hits: list[int] = field(default_factory=list)
    weights: str = ""
    server: str = ""
    device: str = "cpu"
    batched_models: tuple[str, ...] = ()
    records: list[Record] = field(default_factory=list)
    main: dict[str, dict[str, OptionRun]] = field(default_factory=dict)
    scan: list[ScanPoint] = field(default_factory=list)
    server_scan: list[ScanPoint] = field(default_factory=list)
    perf: PerfRun = field(default_factory=PerfRun)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    machine_cores: int = 1
    network: list[Any] = field(default_factory=list)
    servers: list[Any] = field(default_factory=list)
    prometheus: dict[str, Any] = field(default_factory=dict)
    chain: Any = None  # exatrkx.study.chain.ChainPhase when the chain phase ran
    simulation: SimulationCheck | None = None
