"""Triton's per-model statistics: parsing the statistics endpoint and differencing snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Raw cumulative counters per model: ``{model: {count, executions, <key>_ns...}}``.
RawStats = dict[str, dict[str, int]]


@dataclass(frozen=True)
class ModelStats:
    """Triton's per-request averages for one model over a time window (ms)."""

    requests: int
    executions: int
    request_ms: float
    queue_ms: float
    compute_input_ms: float
    compute_infer_ms: float
    compute_output_ms: float

    def to_dict(self) -> dict[str, float]:
        return {"requests": self.requests, "executions": self.executions,
                "request_ms": self.request_ms, "queue_ms": self.queue_ms,
                "compute_input_ms": self.compute_input_ms,
                "compute_infer_ms": self.compute_infer_ms,
                "compute_output_ms": self.compute_output_ms}


_STAT_KEYS = ("success", "queue", "compute_input", "compute_infer", "compute_output")


def parse_statistics(raw: Mapping[str, Any]) -> RawStats:
    """Triton's statistics JSON -> ``{model: {count, executions, <key>_ns...}}``."""
    out: RawStats = {}
    for model in raw.get("model_stats", []):
        stats = model.get("inference_stats", {})
        row = {"count": int(stats.get("success", {}).get("count", 0)),
               "executions": int(model.get("execution_count", 0))}
        for key in _STAT_KEYS:
            row[f"{key}_ns"] = int(stats.get(key, {}).get("ns", 0))
        out[model["name"]] = row
    return out


def add_delta(acc: RawStats, before: Mapping[str, Mapping[str, int]],
              after: Mapping[str, Mapping[str, int]]) -> None:
    """Add the counter increases between two snapshots to ``acc``."""
    for model, now in after.items():
        then = before.get(model, {})
        row = acc.setdefault(model, dict.fromkeys(now, 0))
        for key, value in now.items():
            row[key] = row.get(key, 0) + value - then.get(key, 0)


def stats_delta(before: Mapping[str, Mapping[str, int]],
                after: Mapping[str, Mapping[str, int]]) -> dict[str, ModelStats]:
    """Per-request averages of the models that served requests between two snapshots."""
    out: dict[str, ModelStats] = {}
    for name, now in after.items():
        then = before.get(name, {})
        n = now["count"] - then.get("count", 0)
        if n <= 0:
            continue

        def ms(key: str, now: Mapping[str, int] = now, then: Mapping[str, int] = then,
               n: int = n) -> float:
            return (now[f"{key}_ns"] - then.get(f"{key}_ns", 0)) / n / 1e6

        out[name] = ModelStats(
            requests=n, executions=now["executions"] - then.get("executions", 0),
            request_ms=ms("success"), queue_ms=ms("queue"),
            compute_input_ms=ms("compute_input"), compute_infer_ms=ms("compute_infer"),
            compute_output_ms=ms("compute_output"))
    return out
