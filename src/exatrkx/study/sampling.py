"""Triton's Prometheus metrics sampled over a block of the study."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from exatrkx.study.prom import GaugeSampler, model_usage, scrape
from exatrkx.study.results import Endpoint, StudyResult


@contextlib.contextmanager
def prometheus_block(endpoint: Endpoint, result: StudyResult) -> Iterator[None]:
    """Triton's metrics over the block: per-model usage and sampled gauges, into
    ``result.prometheus`` (a note instead when the endpoint cannot be read)."""
    if endpoint.metrics_url is None:
        yield
        return
    try:
        before = scrape(endpoint.metrics_url)
    except (OSError, ValueError) as exc:
        result.notes.append(f"Prometheus metrics unreadable ({exc}); no utilisation section")
        yield
        return
    t0 = time.perf_counter()
    with GaugeSampler(endpoint.metrics_url, interval_s=1.0) as sampler:
        yield
    try:
        after = scrape(endpoint.metrics_url)
    except (OSError, ValueError):
        return
    wall = time.perf_counter() - t0
    result.prometheus = {"wall_s": wall, "gauges": sampler.summary(),
                         "models": {m: u.to_dict()
                                    for m, u in model_usage(before, after, wall).items()}}
