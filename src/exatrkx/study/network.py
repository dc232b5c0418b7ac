"""The network-latency scan: the options of :data:`exatrkx.study.config.NETWORK_OPTIONS`
through :class:`exatrkx.study.netem.NetemProxy`.

For each one-way delay (and bandwidth cap) a proxy sits between the client and the server's
gRPC port. Per option: latency with one event in flight, throughput with several, bytes on
the wire per event (counted by the proxy), and the simple model's prediction

    compute + round trips x 2 x delay + bytes / bandwidth

where *compute* is the option's latency through the proxy with no delay and no cap, and the
round trips are the option's requests per event (:mod:`exatrkx.contract`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exatrkx.contract import OPTIONS, Option
from exatrkx.service.runner import make_runner
from exatrkx.study.config import NETWORK_OPTIONS
from exatrkx.study.netem import NetemProxy, predicted_ms
from exatrkx.util.timing import TimedRun


@dataclass
class NetPoint:
    """One option at one delay and bandwidth cap (0: none).

    Attributes:
        single: events one at a time (latency).
        loaded: ``in_flight`` events in flight (throughput).
    """

    option: Option
    delay_ms: float
    bandwidth_gbps: float
    single: TimedRun = field(default_factory=TimedRun)
    loaded: TimedRun = field(default_factory=TimedRun)
    in_flight: int = 1
    bytes_up: float = 0.0
    bytes_down: float = 0.0
    mismatched: int = 0

    @property
    def round_trips(self) -> int:
        return OPTIONS[self.option].requests_per_event


def scan_grid(delays: Sequence[float], bandwidths: Sequence[float]) -> list[tuple[float, float]]:
    """``(delay_ms, bandwidth_gbps)`` points: every delay uncapped, then every delay with
    every cap; ``(0, 0)`` (the model's compute) always first."""
    grid = [(0.0, 0.0)] + [(d, 0.0) for d in sorted(set(delays)) if d != 0]
    grid += [(d, b) for b in sorted(set(bandwidths)) if b > 0 for d in sorted({0.0, *delays})]
    return grid


def run_network_scan(grpc_url: str, features: Sequence[np.ndarray],
                     reference: Sequence[np.ndarray] | None, delays: Sequence[float],
                     bandwidths: Sequence[float] = (), *,
                     options: Sequence[Option] = NETWORK_OPTIONS,
                     in_flight: int = 4, warmup: int = 2, weights: Path | None = None,
                     progress: Callable[[str], None] | None = None) -> list[NetPoint]:
    """Every option at every grid point (see :func:`scan_grid`); one proxy per point.

    Args:
        grpc_url: the server's gRPC ``127.0.0.1:port``.
        features: the events.
        reference: option 0 labels to compare with (None: not compared).
        delays: one-way delays in ms.
        bandwidths: caps in Gbit/s (each direction).
        options: remote options to time.
        in_flight: events in flight for the throughput figure.
        warmup: events per runner before timing.
        weights: weights of the client's local stages (option 3 needs none).
        progress: called with a line per point.
    """
    points = []
    for delay, gbps in scan_grid(delays, bandwidths):
        with NetemProxy(grpc_url, delay, gbps * 1e9 if gbps else None) as proxy:
            for option in options:
                point = NetPoint(option, delay, gbps, in_flight=in_flight)
                with make_runner(option, proxy.url, weights_dir=weights,
                                 concurrency=in_flight) as runner:
                    runner.run_many((list(features) * max(warmup, in_flight))[:max(warmup,
                                                                                   in_flight)])
                    proxy.reset_counters()
                    for i, x in enumerate(features):
                        result = runner.run(x)
                        point.single.add(result.timing.total_ms)
                        if reference is not None:
                            point.mismatched += int(not np.array_equal(result.labels,
                                                                       reference[i]))
                    n = max(len(features), 1)
                    point.bytes_up, point.bytes_down = proxy.up.bytes / n, proxy.down.bytes / n
                    t0 = time.perf_counter()
                    for result in runner.run_many(features):
                        point.loaded.add(result.timing.total_ms)
                    point.loaded.wall_s = time.perf_counter() - t0
                points.append(point)
                if progress is not None:
                    progress(f"network: S{int(option)} delay {delay} ms, "
                             f"{f'{gbps:g} Gbit/s' if gbps else 'no cap'}: "
                             f"{point.single.latency_mean_ms:.2f} ms, "
                             f"{point.loaded.throughput_eps:.1f} events/s")
    return points


def network_rows(points: Sequence[NetPoint]) -> list[dict[str, Any]]:
    """Table rows with the model's prediction (compute: the option at delay 0, no cap)."""
    base = {p.option: p.single.latency_mean_ms for p in points
            if p.delay_ms == 0 and not p.bandwidth_gbps}
    rows = []
    for p in points:
        wire = p.bytes_up + p.bytes_down
        mean = p.single.latency_mean_ms
        model = predicted_ms(base.get(p.option, math.nan), p.round_trips, p.delay_ms,
                             wire, p.bandwidth_gbps * 1e9 if p.bandwidth_gbps else None)
        rows.append({"option": int(p.option), "delay_ms": p.delay_ms,
                     "bandwidth_gbps": p.bandwidth_gbps, "round_trips": p.round_trips,
                     "latency_mean_ms": mean, "latency_p50_ms": p.single.latency_ms(50),
                     "model_ms": model, "model_error_ms": mean - model,
                     "throughput_eps": p.loaded.throughput_eps, "in_flight": p.in_flight,
                     "bytes_up_per_event": p.bytes_up, "bytes_down_per_event": p.bytes_down,
                     "identical_labels": p.mismatched == 0})
    return rows


def network_section(rows: Sequence[dict[str, Any]], fmt: Callable[[Any], str]) -> list[str]:
    """The report's Markdown section for :func:`network_rows`."""
    options = sorted({r["option"] for r in rows})
    trips = ", ".join(f"option {o} {OPTIONS[Option(o)].requests_per_event}" for o in options)
    md = ["## Network latency", "",
          f"Options {', '.join(map(str, options))} through a user-space TCP proxy on the "
          "loopback (`exatrkx.study.netem`; these kernels have no netem qdisc) that delays "
          "each direction by the one-way delay and can cap each direction's rate. *model* = "
          "compute + round trips x 2 x delay + bytes / bandwidth, with compute = the option "
          f"through the proxy at delay 0 and no cap; round trips: {trips}. "
          "Latency with one event in flight; throughput with "
          f"{rows[0]['in_flight'] if rows else '?'} in flight.", ""]
    header = ["option", "one-way delay ms", "cap Gbit/s", "mean ms", "model ms",
              "measured - model", "events/s", "kB up/event", "kB down/event",
              "identical labels"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in sorted(rows, key=lambda r: (r["option"], r["bandwidth_gbps"], r["delay_ms"])):
        cells = [f"S{r['option']}", r["delay_ms"], r["bandwidth_gbps"] or "none",
                 r["latency_mean_ms"], r["model_ms"], r["model_error_ms"], r["throughput_eps"],
                 r["bytes_up_per_event"] / 1e3, r["bytes_down_per_event"] / 1e3,
                 r["identical_labels"]]
        lines.append("| " + " | ".join(fmt(c) for c in cells) + " |")
    return [*md, *lines, ""]


__all__ = ["NetPoint", "network_rows", "network_section", "run_network_scan", "scan_grid"]
