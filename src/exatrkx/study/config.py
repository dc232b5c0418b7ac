"""Settings of the timing study and the parsing of its command-line lists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exatrkx.contract import ALL_OPTIONS, WHOLE_EVENT_OPTIONS, Option, Protocol
from exatrkx.errors import InputError
from exatrkx.service.tls import ClientTls

#: Transport name -> (protocol, system shared memory).
TRANSPORTS: dict[str, tuple[Protocol, bool]] = {"grpc": ("grpc", False),
                                                "http": ("http", False),
                                                "shm": ("grpc", True)}
#: Options of the throughput scan: local multithreaded option 0 against the one-request ones.
SCAN_OPTIONS: tuple[Option, ...] = (Option.IN_PROCESS, *WHOLE_EVENT_OPTIONS)
#: Events in flight at which the best served setting is chosen and held against option 0.
BEST_AT_IN_FLIGHT = 8
#: Options timed through the network-delay proxy (the most and the fewest round trips).
NETWORK_OPTIONS: tuple[Option, ...] = (Option.EVERY_STAGE_REMOTE, *WHOLE_EVENT_OPTIONS)
#: Options of the multi-server scan.
SCALEOUT_OPTIONS: tuple[Option, ...] = WHOLE_EVENT_OPTIONS


def parse_int_list(text: str, what: str, allowed: tuple[int, ...] | None = None,
                   minimum: int = 1) -> tuple[int, ...]:
    """``"1,2,4"`` -> ``(1, 2, 4)``: sorted, without duplicates.

    Raises:
        InputError: empty, not integers, below ``minimum`` or outside ``allowed``.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise InputError(f"{what}: give a comma-separated list, got {text!r}")
    values = []
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            raise InputError(f"{what}: {part!r} is not an integer") from None
        if allowed is not None and value not in allowed:
            raise InputError(f"{what}: unknown value {value} (choose from "
                             f"{','.join(map(str, allowed))})")
        if value < minimum:
            raise InputError(f"{what}: values must be >= {minimum}, got {value}")
        values.append(value)
    return tuple(sorted(set(values)))


def parse_float_list(text: str, what: str) -> tuple[float, ...]:
    """``"0,0.1,2.5"`` -> ``(0.0, 0.1, 2.5)``: sorted, without duplicates.

    Raises:
        InputError: empty or not numbers.
    """
    try:
        values = {float(p) for p in text.split(",") if p.strip()}
    except ValueError:
        raise InputError(f"{what}: give comma-separated numbers, got {text!r}") from None
    if not values:
        raise InputError(f"{what}: give a comma-separated list, got {text!r}")
    return tuple(sorted(values))


def parse_protocols(text: str) -> tuple[str, ...]:
    """``"grpc,http,shm"`` -> names of :data:`TRANSPORTS` in the given order.

    Raises:
        InputError: empty or an unknown name.
    """
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not names:
        raise InputError(f"--protocols: give a comma-separated list, got {text!r}")
    for name in names:
        if name not in TRANSPORTS:
            raise InputError(f"--protocols: unknown transport {name!r} (choose from "
                             f"{','.join(TRANSPORTS)})")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class StudyConfig:
    """What the study measures and where it writes.

    Attributes:
        out: folder of ``report.md``, the PNG plots and ``timings.csv``.
        events: events to time (None: the shared HNL events, else simulated HNL events).
        n_events: at most this many events.
        options: service options timed in the main run (0 is always added: the reference).
        concurrency: in-flight levels of the throughput scan.
        protocols: transports of the main run (keys of :data:`TRANSPORTS`); the first one is
            the study's headline transport.
        repeats: passes over the events per option in the main run (options interleaved per
            event), and per point of the throughput scan (points interleaved per pass).
        warmup: warm-up events per runner before anything is timed.
        url: an external server's gRPC ``host:port`` (None: start the embedded server).
        http_url: the external server's HTTP ``host:port`` (None: same host, port 8000).
        tls: TLS of the external server's gRPC endpoint (None: plain text).
        weights: weights folder (None: the shipped ones, else random-init nets).
        instances: model instances per model of the throughput scan (embedded server only).
        batching_scan: scan dynamic batching on and off (else only the main server's
            setting).
        main_instances: instances of the main server (None: the repository default).
        main_batching: dynamic batching of the main server (None: the repository default).
        perf_analyzer: run Triton's perf_analyzer against the whole-event models.
        perf_concurrency: perf_analyzer's concurrency levels.
        perf_interval_ms: perf_analyzer's measurement window.
        threads: torch intra-op threads of the client and of every server model.
        seed: seed of simulated events (when the shared ones are absent).
        progress: progress bars on stderr.
        quick: the CI variant (for the report's wording only).
        network_delays: one-way delays (ms) of the network scan through the loopback proxy
            (empty: no scan; see :mod:`exatrkx.study.network`).
        network_bandwidths: bandwidth caps (Gbit/s) of the network scan (empty: uncapped only).
        servers: server counts of the multi-server scan (empty: no scan; embedded server
            only; see :mod:`exatrkx.study.scaleout`).
        chain_events: ACTS-simulated events with truth for the chain phase (our finder
            through options 0, 4, 5 against ACTS' CKF; see :mod:`exatrkx.study.chain`);
            None: no chain phase.
        check_simulation: when the timed events are real (the shared sample), simulate as
            many HNL events and compare the two (:mod:`exatrkx.study.simulation`).
    """

    out: Path = Path("study-out")
    events: Path | None = None
    n_events: int = 100
    options: tuple[Option, ...] = ALL_OPTIONS
    concurrency: tuple[int, ...] = (1, 2, 4, 8, 16)
    protocols: tuple[str, ...] = ("grpc", "http", "shm")
    repeats: int = 3
    warmup: int = 3
    url: str | None = None
    http_url: str | None = None
    tls: ClientTls | None = None
    weights: Path | None = None
    instances: tuple[int, ...] = (1, 2)
    batching_scan: bool = True
    main_instances: int | None = None
    main_batching: bool | None = None
    perf_analyzer: bool = True
    perf_concurrency: tuple[int, ...] = (1, 2, 4)
    perf_interval_ms: int = 1000
    threads: int = 1
    seed: int = 1
    progress: bool = True
    quick: bool = False
    network_delays: tuple[float, ...] = ()
    network_bandwidths: tuple[float, ...] = ()
    servers: tuple[int, ...] = ()
    chain_events: Path | None = None
    check_simulation: bool = True

    def __post_init__(self) -> None:
        if any(d < 0 for d in self.network_delays) or any(
                b <= 0 for b in self.network_bandwidths):
            raise InputError("--network-delay must be >= 0 ms, --network-bandwidth > 0 Gbit/s")
        if self.n_events < 1:
            raise InputError(f"--n-events must be >= 1, got {self.n_events}")
        if self.repeats < 1:
            raise InputError(f"--repeats must be >= 1, got {self.repeats}")
        if self.threads < 1:
            raise InputError(f"--threads must be >= 1, got {self.threads}")
        for name, values in (("options", self.options), ("concurrency", self.concurrency),
                             ("protocols", self.protocols)):
            if not values:
                raise InputError(f"--{name}: empty list")
        bad = sorted(set(self.options) - set(ALL_OPTIONS))
        if bad:
            raise InputError(f"--options: unknown option {bad[0]} (choose from "
                             f"{','.join(str(int(o)) for o in ALL_OPTIONS)})")
        if min(self.concurrency) < 1 or min(self.instances, default=1) < 1 or (
                self.main_instances is not None and self.main_instances < 1):
            raise InputError("concurrency levels and instance counts must be >= 1")
        unknown = sorted(set(self.protocols) - set(TRANSPORTS))
        if unknown:
            raise InputError(f"--protocols: unknown transport {unknown[0]!r}")
        for path in (self.events, self.chain_events):
            if path is not None and not path.exists() and not (
                    path.parent / f"{path.name}-hits.csv").exists():
                raise InputError("no such file, directory or event prefix", path)

    @property
    def timed_options(self) -> tuple[Option, ...]:
        """The options of the main run, option 0 (the labels' reference) first."""
        return tuple(Option(o) for o in sorted({Option.IN_PROCESS, *self.options}))

    @property
    def embedded(self) -> bool:
        """True when the study starts its own server."""
        return self.url is None


def quick_config(**overrides: object) -> StudyConfig:
    """The ``--quick`` settings (under a minute): 10 events, one repeat, the main server's
    setting only, fewer scan points. Its ratios are indicative: the report says so and
    prints their intervals."""
    values: dict[str, object] = {"n_events": 10, "repeats": 1, "warmup": 1,
                                 "concurrency": (1, 2, BEST_AT_IN_FLIGHT), "instances": (),
                                 "batching_scan": False, "perf_concurrency": (1, 2),
                                 "perf_interval_ms": 300, "quick": True}
    values.update(overrides)
    return StudyConfig(**values)  # type: ignore[arg-type]
