"""How many Triton servers and CPU cores a given event rate needs, from the measured
throughput and CPU time per event (the outlook of the original study)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Event rates of the estimate table (Hz).
DEFAULT_RATES = (100.0, 1_000.0, 10_000.0, 100_000.0)
#: Bytes per hit of a whole-event request and its answer: FEATURES f32 x3 in, LABELS i64 out.
WIRE_BYTES_PER_HIT = 3 * 4 + 8


@dataclass(frozen=True)
class Basis:
    """Measured figures an estimate starts from.

    Attributes:
        label: which measurement (option, concurrency, server setting).
        throughput_eps: events per second one server sustained.
        server_cpu_ms: server CPU ms per event (Triton + stubs).
        client_cpu_ms: client CPU ms per event.
        local_cpu_ms: CPU ms per event of the in-process pipeline (option 0).
        local_throughput_eps: events per second of option 0 on this machine.
        machine_cores: cores of the measuring machine (client and server shared them).
        mean_hits: mean hits per event.
    """

    label: str
    throughput_eps: float
    server_cpu_ms: float
    client_cpu_ms: float
    local_cpu_ms: float
    local_throughput_eps: float
    machine_cores: int
    mean_hits: float


@dataclass(frozen=True)
class Need:
    """What one event rate needs."""

    rate_hz: float
    servers: int
    server_cores: int
    client_cores: int
    local_cores: int
    network_mbit_s: float

    def to_dict(self) -> dict[str, float]:
        return {"rate_hz": self.rate_hz, "servers": self.servers,
                "server_cores": self.server_cores, "client_cores": self.client_cores,
                "local_cores": self.local_cores, "network_mbit_s": self.network_mbit_s}


#: Planned fraction of a core (and of a server's measured throughput) in use.
UTILISATION = 0.7


def _cores(rate: float, cpu_ms: float, utilisation: float) -> int:
    if not math.isfinite(cpu_ms) or cpu_ms <= 0:
        return 0
    return max(1, math.ceil(rate * cpu_ms / 1e3 / utilisation))


def estimate(basis: Basis, rates: Sequence[float] = DEFAULT_RATES,
             utilisation: float = UTILISATION) -> list[Need]:
    """Servers and cores per event rate.

    Args:
        basis: the measured figures.
        rates: event rates (Hz).
        utilisation: the fraction of a core (and of a server's measured throughput) planned
            for; the rest is headroom for bursts.

    Returns:
        One :class:`Need` per rate: servers like the measured one (throughput basis),
        server cores and client cores (CPU-time basis), cores of in-process option 0
        instead, and the whole-event network traffic (requests and answers).
    """
    out = []
    for rate in rates:
        servers = (math.ceil(rate / (basis.throughput_eps * utilisation))
                   if basis.throughput_eps > 0 else 0)
        wire = rate * basis.mean_hits * WIRE_BYTES_PER_HIT * 8 / 1e6
        out.append(Need(rate, servers, _cores(rate, basis.server_cpu_ms, utilisation),
                        _cores(rate, basis.client_cpu_ms, utilisation),
                        _cores(rate, basis.local_cpu_ms, utilisation), wire))
    return out


ASSUMPTIONS = (
    "CPU only, events like the timed ones (the same mean number of hits, so the same "
    "pileup); cost grows linearly "
    "with the event rate and servers scale out independently (behind a load balancer such as "
    "Envoy, as in SONIC/SuperSONIC); nothing is shared between servers.",
    "A 'server' is one Triton like the measured one on this machine: its throughput is the "
    "best measured for a whole-event option (4 or 5), with the client on the same cores, so "
    "it is a lower bound for a dedicated server.",
    "Cores come from CPU time per event (server: Triton and its backend stubs; client: the "
    "process sending events), which does not depend on how many cores the machine had; "
    "each core is planned at the given utilisation.",
    "Model instances: each Python-backend instance is one stub process running torch with "
    "one intra-op thread, so the instances of the whole-event model needed are about the "
    "server cores.",
    "Network: FEATURES (12 B/hit) in and LABELS (8 B/hit) out per event, without protocol "
    "framing; the measured transports were local (loopback or shared memory), so a real "
    "network adds its latency to every request but no CPU here.",
)
