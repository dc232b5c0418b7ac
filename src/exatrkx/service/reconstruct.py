"""The reconstruct application: every event of a folder through a runner, tracks written,
physics evaluated (``exatrkx reconstruct``).

A bad event (unreadable file, bad values, no truth with ``evaluate``, refused by the server)
is reported and skipped; the others are processed. When the server becomes unreachable
(after the client's retries), the remaining events are not attempted: the summary's
``unprocessed`` lists every event without tracks, and a later run with ``resume`` does only
those (tracks files are written atomically, so one that exists is complete).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exatrkx.contract import option
from exatrkx.errors import ExatrkxError, InputError, ServerUnavailable
from exatrkx.io import event_sources, read_event, tracks_path, write_tracks
from exatrkx.physics.metrics import EventMetrics, evaluate_event, stage_edges, summarize
from exatrkx.physics.plots import plot_efficiency
from exatrkx.service.runner import Runner, make_runner, warm_up
from exatrkx.service.tls import ClientTls

#: Metric keys of the summary (None when not evaluated).
METRIC_KEYS = ("track_efficiency", "fake_rate", "duplicate_rate", "edge_efficiency",
               "edge_purity", "track_efficiency_displaced", "fake_rate_majority",
               "trackml_score")
#: Stages whose edges per hit the summary reports.
EDGE_STAGES = ("build", "filter", "gnn")


@dataclass
class ReconstructReport:
    """What :func:`reconstruct_events` did.

    Attributes:
        summary: the JSON-ready summary (``events``, ``failed``, ``option``,
            ``ms_per_event``, ``stages_ms``, ``edges_per_hit``, metric keys -- None when not
            evaluated).
        errors: one message per event that failed (naming its file).
        lines: human-readable lines (one per event, then the summary).
        exit_code: 0, or the exit code of the worst error (2 bad input, 3 server).
    """

    summary: dict[str, Any]
    errors: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    exit_code: int = 0


def reconstruct_events(events: str | Path, option_number: int = 0, url: str | None = None,
                       out: str | Path | None = None, evaluate: bool = False,
                       plots: str | Path | None = None, weights_dir: str | Path | None = None,
                       device: str = "cpu", num_threads: int | None = 1,
                       on_line: Callable[[str], None] | None = None, *,
                       resume: bool = False, timeout_s: float | None = None,
                       retries: int | None = None,
                       tls: ClientTls | None = None) -> ReconstructReport:
    """Reconstruct every event under ``events``; optionally write tracks and evaluate.

    Args:
        events: directory, file or TrackML prefix (see :func:`exatrkx.io.event_sources`).
        option_number: service option (0 = in process).
        url: Triton ``host:port`` for options 1-5.
        out: write ``<event>-tracks.csv`` here.
        evaluate: compute the physics metrics (needs truth).
        plots: write efficiency plots here (implies ``evaluate``).
        weights_dir: weights folder or shipped set name (default: the shipped weights).
        device: torch device of the local stages.
        num_threads: torch intra-op threads (None: leave as is).
        on_line: called with each human-readable line as it is produced.
        resume: skip events whose ``<event>-tracks.csv`` exists in ``out``.
        timeout_s: client timeout of one request (options 1-5; None: the client default).
        retries: resends of a request after a transient failure (None: client default).
        tls: TLS of the connections (options 1-5; None: plain text).

    Raises:
        InputError: no events found, or the weights cannot be used; ServerUnavailable: no
        server at ``url``.
    """
    try:
        opt = option(option_number)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    evaluate = evaluate or plots is not None
    if resume and out is None:
        raise InputError("--resume needs --out (the folder of the tracks already written)")
    if resume and evaluate:
        raise InputError("--resume cannot be combined with --evaluate (metrics need every "
                         "event)")
    sources = event_sources(events)
    skipped = 0
    if resume:
        assert out is not None
        todo = [s for s in sources if not tracks_path(out, s).exists()]
        skipped = len(sources) - len(todo)
        sources = todo
    with make_runner(opt, url, weights_dir=weights_dir, device=device, timeout_s=timeout_s,
                     retries=retries, num_threads=num_threads, tls=tls) as runner:
        warm_up(runner)
        return _reconstruct(runner, sources, skipped, out, evaluate, plots, on_line)


def _reconstruct(runner: Runner, sources: list[Path], skipped: int, out: str | Path | None,
                 evaluate: bool, plots: str | Path | None,
                 on_line: Callable[[str], None] | None) -> ReconstructReport:
    report = ReconstructReport(summary={})
    emit = on_line or (lambda _line: None)
    gnn_cut = runner.config.gnn_cut if runner.config is not None else math.nan
    per_event: list[EventMetrics] = []
    stage_sums: dict[str, float] = {}
    edge_sums = dict.fromkeys(EDGE_STAGES, 0)
    edge_hits = 0
    times: list[float] = []
    unprocessed: list[str] = []
    for i, source in enumerate(sources):
        try:
            ev = read_event(source)
            if evaluate and not ev.has_truth:
                raise InputError("--evaluate needs truth (TrackML particles and truth files); "
                                 "this event has none", source)
            t0 = time.perf_counter()
            result = runner.run(ev.features, keep_graph=evaluate)
            times.append((time.perf_counter() - t0) * 1e3)
            if out is not None:
                try:
                    write_tracks(ev, result.labels, out)
                except OSError as exc:
                    raise InputError(f"cannot write tracks ({exc.strerror or exc})",
                                     out) from None
            if evaluate:
                edges = stage_edges(result.graph, gnn_cut) if result.graph else None
                per_event.append(evaluate_event(ev, result.labels, edges))
        except ExatrkxError as exc:
            msg = str(exc)
            if str(source) not in msg:
                msg = f"{source}: {msg}"
            report.errors.append(msg)
            report.exit_code = max(report.exit_code, exc.exit_code)
            unprocessed.append(str(source))
            if isinstance(exc, ServerUnavailable):
                # the server is gone or refuses us (the client retried): skip the others
                rest = [str(s) for s in sources[i + 1:]]
                unprocessed += rest
                if rest:
                    report.errors.append(f"{len(rest)} more events not attempted: the server "
                                         "is unavailable (rerun with --resume)")
                break
            continue
        for name, ms in result.timing.stages_ms.items():
            stage_sums[name] = stage_sums.get(name, 0.0) + ms
        if all(k in result.edges for k in EDGE_STAGES):
            edge_hits += ev.num_hits
            for k in EDGE_STAGES:
                edge_sums[k] += result.edges[k]
        n_tracks = int(np.unique(result.labels[result.labels >= 0]).size)
        line = f"{ev.name}: {ev.num_hits} hits, {n_tracks} tracks, {times[-1]:.1f} ms"
        report.lines.append(line)
        emit(line)
    n = len(times)
    summary: dict[str, Any] = {
        "events": n, "failed": len(unprocessed), "option": int(runner.option),
        "skipped": skipped, "unprocessed": unprocessed,
        "ms_per_event": float(np.mean(times)) if n else None,
        "ms_per_event_median": float(np.median(times)) if n else None,
        "stages_ms": {k: v / n for k, v in stage_sums.items()},
        "edges_per_hit": {k: (v / edge_hits if edge_hits else None)
                          for k, v in edge_sums.items()}}
    summary.update(dict.fromkeys(METRIC_KEYS))
    if evaluate and per_event:
        metrics = summarize(per_event)
        summary.update({k: metrics[k] for k in METRIC_KEYS})
        summary["edges"] = metrics["edges"]
        summary["counts"] = metrics["counts"]
        if plots is not None:
            summary["plots"] = [str(p) for p in plot_efficiency(metrics, plots)]
    report.summary = summary
    tail = [f"{n} events, {len(unprocessed)} failed"
            + (f", {skipped} skipped (tracks exist)" if skipped else "")
            + (f", {summary['ms_per_event']:.2f} ms/event (mean)" if n else "")]
    if edge_hits:
        tail.append("edges per hit: " + "  ".join(
            f"{k} {summary['edges_per_hit'][k]:.2f}" for k in EDGE_STAGES))
    if evaluate and per_event:
        tail.append("  ".join(f"{k}={_fmt(summary[k])}" for k in METRIC_KEYS))
    for line in tail:
        report.lines.append(line)
        emit(line)
    return report


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.4f}"
