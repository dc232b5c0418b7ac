"""The study's plots (PNG), from its JSON summary."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from exatrkx.contract import STAGES
from exatrkx.study.analysis import (
    FLOOR_TEXT,
    MODEL_OPTION,
    OPTION_TEXT,
    OVERHEAD,
    OVERHEAD_TEXT,
    WHOLE_EVENT_MODELS,
)
from exatrkx.study.config import SCAN_OPTIONS
from exatrkx.study.results import StudyResult


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path)
    return path


def plot_concurrency(summary: Mapping[str, Any], path: Path) -> Path:
    """Throughput and latency against events in flight (with perf_analyzer's points)."""
    fig, (ax_t, ax_l) = _figure(11, 4.2, 2)
    for opt, levels in summary["concurrency"].items():
        xs = sorted(int(c) for c in levels)
        rows = [levels[str(c)] for c in xs]
        label = f"option {opt} ({OPTION_TEXT[opt]})"
        line = ax_t.plot(xs, [r["throughput_eps"] for r in rows], "o-", label=label)[0]
        ax_l.plot(xs, [r["latency_p50_ms"] for r in rows], "o-", color=line.get_color(),
                  label=f"{label} p50")
        ax_l.plot(xs, [r["latency_p95_ms"] for r in rows], "^:", color=line.get_color(),
                  label=f"option {opt} p95")
    for model, opt in MODEL_OPTION.items():
        rows = [r for r in summary["perf_analyzer"]["rows"] if r.get("model") == model]
        if rows:
            ax_t.plot([r["concurrency"] for r in rows],
                      [r["throughput_infer_per_s"] for r in rows], "s--", alpha=0.7,
                      label=f"perf_analyzer {model} (option {opt})")
    ax_t.set(xlabel="events in flight", ylabel="events / s", title="throughput")
    ax_l.set(xlabel="events in flight", ylabel="ms per event", title="latency")
    levels = sorted({int(c) for v in summary["concurrency"].values() for c in v})
    for ax in (ax_t, ax_l):
        ax.set_xscale("log", base=2)
        if levels:
            ax.set_xticks(levels, [str(c) for c in levels])
            ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _top(ax: Any, stacks: np.ndarray) -> None:
    """y from 0 to the tallest stack plus room for the legend."""
    finite = stacks[np.isfinite(stacks)]
    top = float(finite.max()) if finite.size else 0.0
    ax.set_ylim(0.0, top * 1.3 if top > 0 else 1.0)


def plot_stages(summary: Mapping[str, Any], path: Path) -> Path:
    """Stacked bars per option: client-side stages, and the overhead decomposition."""
    fig, (ax_s, ax_o) = _figure(12, 4.6, 2)
    opts = list(summary["options"])
    names = [f"S{o}" for o in opts]
    bottom = np.zeros(len(opts))
    keys = [*STAGES, *WHOLE_EVENT_MODELS]
    for key in keys:
        stage = np.array([summary["options"][o]["stages_ms"].get(key, 0.0) for o in opts])
        if stage.any():
            ax_s.bar(names, stage, bottom=bottom, label=key)
            bottom += stage
    ax_s.set(ylabel="ms per event", title="per-stage split, client side")
    _top(ax_s, bottom)
    floor = summary["floor"]
    floor_names = {"hop": "identity\n1 hop", "ensemble5": "identity\nx5",
                   "touch_hop": "touch\n1 hop", "touch_ensemble5": "touch\nx5"}
    bottom = np.zeros(len(opts) + len(FLOOR_TEXT))
    for comp in OVERHEAD:
        vals: list[float] = [max(summary["options"][o]["overhead_ms"][comp], 0.0) for o in opts]
        vals += [floor[f"{key}_ms"] if comp == "transfer" else 0.0 for key in FLOOR_TEXT]
        arr = np.nan_to_num(np.array(vals, dtype=float))
        ax_o.bar([*names, *(floor_names[k] for k in FLOOR_TEXT)], arr, bottom=bottom,
                 label=OVERHEAD_TEXT[comp])
        bottom += arr
    ax_o.set(ylabel="ms per event", title="where the time goes (floors: median round trip)")
    _top(ax_o, bottom)
    for ax, ncols in ((ax_s, 4), (ax_o, 2)):
        ax.legend(fontsize=7, loc="upper center", ncols=ncols)  # in the room _top leaves
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_latency(result: StudyResult, path: Path) -> Path:
    """Distributions of ms per event per option (headline transport) and per transport."""
    fig, (ax_o, ax_t) = _figure(12, 4.4, 2)
    head = result.config.protocols[0]
    runs = result.main.get(head, {})
    keys = [k for k in runs if runs[k].timed.latencies_ms]
    data = [runs[k].timed.latencies_ms for k in keys]
    ax_o.boxplot(data, showfliers=True, whis=(5, 95))
    ax_o.set_xticks(range(1, len(keys) + 1),
                    [k.replace("floor_", "floor\n") if k.startswith("floor") else f"S{k}"
                     for k in keys])
    ax_o.set_yscale("log")
    ax_o.set(ylabel="ms per event", title=f"per option ({head}; whiskers 5-95 %)")
    for transport, trs in result.main.items():
        for key in (str(int(o)) for o in SCAN_OPTIONS):
            if key in trs and trs[key].timed.latencies_ms:
                values = np.sort(trs[key].timed.latencies_ms)
                ax_t.plot(values, np.arange(1, values.size + 1) / values.size,
                          label=f"S{key} {transport}")
    ax_t.set_xscale("log")
    ax_t.set(xlabel="ms per event", ylabel="fraction of events",
             title="cumulative distribution per transport")
    ax_t.legend(fontsize=7)
    for ax in (ax_o, ax_t):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_transports(summary: Mapping[str, Any], path: Path) -> Path:
    """Mean ms per event per option and transport."""
    fig, (ax,) = _figure(9, 4.0)
    opts = list(summary["options"])
    transports = summary["transports"]
    width = 0.8 / max(len(transports), 1)
    x = np.arange(len(opts) + len(FLOOR_TEXT))
    for i, t in enumerate(transports):
        vals = [summary["options"][o]["transports"][t]["ms_per_event"] for o in opts]
        vals += [summary["floor"]["transports"][t][f"{key}_ms"] for key in FLOOR_TEXT]
        ax.bar(x + i * width, np.nan_to_num(np.array(vals, dtype=float)), width, label=t)
    ax.set_xticks(x + width * (len(transports) - 1) / 2,
                  [*(f"S{o}" for o in opts), "identity\n1 hop", "identity\nx5",
                   "touch\n1 hop", "touch\nx5"])
    ax.set(ylabel="ms per event (options: mean; floors: median)", title="transports")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_server_scan(summary: Mapping[str, Any], path: Path) -> Path:
    """The throughput scan: events/s against events in flight, one line per option and
    server setting (option 0 from the main server's scan), the best served setting marked."""
    fig, (ax,) = _figure(9, 4.6)
    rows = summary["server_scan"]
    main = summary["main_server"]
    best = summary["best_served"]
    keys = sorted({(r["option"], r["instances"], r["dynamic_batching"]) for r in rows})
    for opt, inst, batch in keys:
        if opt == 0 and (inst, batch) != (main["instances"], main["batching"]):
            continue
        pts = sorted((r["concurrency"], r["throughput_eps"]) for r in rows
                     if (r["option"], r["instances"], r["dynamic_batching"]) == (opt, inst, batch))
        is_best = best is not None and (opt, inst, batch) == (
            best["option"], best["instances"], best["batching"])
        label = ("option 0 (in process)" if opt == 0 else
                 f"option {opt}, {inst} inst., batching {'on' if batch else 'off'}"
                 + (" (best)" if is_best else ""))
        ax.plot([c for c, _ in pts], [t for _, t in pts],
                "k-o" if opt == 0 else ("o-" if batch else "s--"),
                lw=2.5 if is_best or opt == 0 else 1.2, label=label)
    levels = sorted({r["concurrency"] for r in rows})
    ax.set_xscale("log", base=2)
    if levels:
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.minorticks_off()
    ax.set(xlabel="events in flight", ylabel="events / s (median of passes)",
           title="throughput scan: model instances x dynamic batching")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)
