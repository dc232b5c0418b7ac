"""Triton's Prometheus metrics (``:8002/metrics``): parsing, deltas, and a gauge sampler.

Counters per model (``nv_inference_count``, ``nv_inference_exec_count``,
``nv_inference_request_success``, ``nv_inference_*_duration_us``) are read before and after
a run and :func:`model_usage` turns the increase into per-request and per-execution
averages; gauges (``nv_cpu_utilization``, ``nv_inference_pending_request_count``) change
over the run and are sampled by :class:`GaugeSampler`. Triton refreshes CPU metrics every
couple of seconds, so short runs see few distinct CPU samples.
"""

from __future__ import annotations

import math
import re
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

#: ``name{labels} value`` (an optional timestamp after the value is ignored).
_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Metrics:
    """One scrape: ``(name, labels) -> value``."""

    samples: Mapping[Key, float]

    def get(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        want = set(labels.items())
        return float(sum(v for (n, lab), v in self.samples.items()
                         if n == name and want <= lab))

    def per_model(self, name: str) -> dict[str, float]:
        """``{model: value}`` of a per-model metric (versions summed)."""
        out: dict[str, float] = {}
        for (n, lab), v in self.samples.items():
            model = dict(lab).get("model")
            if n == name and model is not None:
                out[model] = out.get(model, 0.0) + v
        return out

    def names(self) -> set[str]:
        return {n for n, _ in self.samples}


def _unescape(value: str) -> str:
    return value.replace(r"\"", '"').replace(r"\n", "\n").replace("\\\\", "\\")


def parse_metrics(text: str) -> Metrics:
    """Prometheus text exposition format -> :class:`Metrics` (comments skipped).

    Raises:
        ValueError: a line that is not a sample.
    """
    samples: dict[Key, float] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            raise ValueError(f"line {number}: not a Prometheus sample: {line[:80]!r}")
        labels = frozenset((k, _unescape(v)) for k, v in _LABEL.findall(m.group(3) or ""))
        value = m.group(4)
        samples[(m.group(1), labels)] = float({"+Inf": "inf", "-Inf": "-inf"}.get(value, value))
    return Metrics(samples)


def scrape(url: str, timeout_s: float = 2.0) -> Metrics:
    """Read and parse a metrics endpoint (``http://127.0.0.1:8002/metrics``).

    Raises:
        OSError: unreachable; ValueError: not Prometheus text.
    """
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return parse_metrics(resp.read().decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class ModelUsage:
    """Triton's per-model averages over a window, from the counter increases.

    Attributes:
        requests: successful requests.
        executions: model executions (fewer than requests when batched).
        queue_us_per_exec: queue time per execution (what the autoscaler watches).
        request_us: end-to-end server time per request.
        queue_us: queue time per request.
        compute_input_us / compute_infer_us / compute_output_us: per request.
        busy_fraction: compute time over the window's wall time (per instance summed: may
            exceed 1 with several instances).
    """

    requests: int
    executions: int
    queue_us_per_exec: float
    request_us: float
    queue_us: float
    compute_input_us: float
    compute_infer_us: float
    compute_output_us: float
    busy_fraction: float

    def to_dict(self) -> dict[str, float]:
        return dict(vars(self))


_DURATIONS = {"request_us": "nv_inference_request_duration_us",
              "queue_us": "nv_inference_queue_duration_us",
              "compute_input_us": "nv_inference_compute_input_duration_us",
              "compute_infer_us": "nv_inference_compute_infer_duration_us",
              "compute_output_us": "nv_inference_compute_output_duration_us"}


def model_usage(before: Metrics, after: Metrics, wall_s: float) -> dict[str, ModelUsage]:
    """Per-model averages of the models that served requests between two scrapes."""
    def inc(name: str) -> dict[str, float]:
        then = before.per_model(name)
        return {m: v - then.get(m, 0.0) for m, v in after.per_model(name).items()}

    success = inc("nv_inference_request_success")
    execs = inc("nv_inference_exec_count")
    durations = {key: inc(name) for key, name in _DURATIONS.items()}
    out = {}
    for model, n in success.items():
        if n <= 0:
            continue
        ex = execs.get(model, 0.0)
        d = {key: durations[key].get(model, 0.0) for key in _DURATIONS}
        compute = d["compute_input_us"] + d["compute_infer_us"] + d["compute_output_us"]
        out[model] = ModelUsage(
            requests=int(n), executions=int(ex),
            queue_us_per_exec=d["queue_us"] / ex if ex > 0 else math.nan,
            request_us=d["request_us"] / n, queue_us=d["queue_us"] / n,
            compute_input_us=d["compute_input_us"] / n,
            compute_infer_us=d["compute_infer_us"] / n,
            compute_output_us=d["compute_output_us"] / n,
            busy_fraction=compute / 1e6 / wall_s if wall_s > 0 else math.nan)
    return out


@dataclass
class GaugeSampler:
    """Samples gauges of a metrics endpoint every ``interval_s`` in a thread (a context
    manager); :meth:`summary` gives mean and max per gauge.

    Attributes:
        url: the metrics endpoint.
        gauges: metric names to sample (summed over their labels).
        interval_s: sampling period.
    """

    url: str
    gauges: tuple[str, ...] = ("nv_cpu_utilization", "nv_inference_pending_request_count")
    interval_s: float = 0.5
    values: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def _loop(self) -> None:
        while True:
            try:
                m = scrape(self.url, timeout_s=max(self.interval_s, 0.5))
                for name in self.gauges:
                    self.values.setdefault(name, []).append(m.get(name))
            except (OSError, ValueError):
                self.errors += 1
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> GaugeSampler:
        self._thread = threading.Thread(target=self._loop, name="prom-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{gauge: {"mean", "max", "samples"}}``."""
        out = {}
        for name, vals in self.values.items():
            out[name] = {"mean": sum(vals) / len(vals) if vals else math.nan,
                         "max": max(vals) if vals else math.nan, "samples": len(vals)}
        return out


__all__ = ["GaugeSampler", "Metrics", "ModelUsage", "model_usage", "parse_metrics", "scrape"]
