"""The study's outputs on disk: ``report.md``, the PNG plots and ``timings.csv``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any

from exatrkx.acts.chain import CKF_NAME
from exatrkx.contract import STAGES
from exatrkx.physics.plots import plot_efficiency_comparison
from exatrkx.physics.samples import plot_comparison
from exatrkx.study.analysis import summarize
from exatrkx.study.chain import CHAIN_OPTIONS, finder_name
from exatrkx.study.markdown import report_markdown
from exatrkx.study.plots import (
    plot_concurrency,
    plot_latency,
    plot_server_scan,
    plot_stages,
    plot_transports,
)
from exatrkx.study.results import StudyResult
from exatrkx.util.files import atomic_write, atomic_write_text

CSV_COLUMNS = ("phase", "option", "transport", "concurrency", "instances", "dynamic_batching",
               "repeat", "event", "hits", "ms", *(f"{s}_ms" for s in STAGES), "request_ms",
               "requests")


def write_csv(result: StudyResult, path: Path) -> Path:
    """Raw per-event timings, one row per timed event (``CSV_COLUMNS``)."""

    def write(fh: IO[str]) -> None:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in result.records:
            stages = [_num(r.stages.get(s)) for s in STAGES]
            writer.writerow([r.phase, r.option, r.transport, r.concurrency, r.instances,
                             int(r.batching), r.repeat, r.event, r.hits, f"{r.ms:.4f}",
                             *stages, f"{r.request_ms:.4f}", r.requests])

    return atomic_write(path, write, sync=False)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def write_report(result: StudyResult, out: Path) -> dict[str, Any]:
    """Write ``report.md``, the plots and ``timings.csv`` into ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(result)
    plots = {"stages": "stages.png", "concurrency": "throughput_concurrency.png",
             "latency": "latency.png", "transports": "transports.png",
             "server_scan": "server_scan.png"}
    plot_stages(summary, out / plots["stages"])
    plot_concurrency(summary, out / plots["concurrency"])
    plot_latency(result, out / plots["latency"])
    plot_transports(summary, out / plots["transports"])
    plot_server_scan(summary, out / plots["server_scan"])
    if result.chain is not None and result.chain.summary.get("events"):
        plots["chain_radius"] = "chain_efficiency_vs_radius.png"
        finders = result.chain.finders
        plot_efficiency_comparison(
            {"GNN (options 0, 4, 5)": finders[finder_name(CHAIN_OPTIONS[0])],
             "CKF": finders[CKF_NAME]}, out / plots["chain_radius"],
            title=f"{result.chain.summary['events']} events of {Path(result.chain.events).name}")
    if result.simulation is not None:
        plots["simulation"] = "simulation.png"
        plot_comparison(result.simulation.real, result.simulation.simulated,
                        result.simulation.summary, out / plots["simulation"])
    write_csv(result, out / "timings.csv")
    atomic_write_text(out / "report.md", report_markdown(result, summary, plots), sync=False)
    return summary
