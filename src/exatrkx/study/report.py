"""The study's outputs: the JSON summary, ``timings.csv``, PNG plots, ``report.md`` and the
plain-text summary table."""

from __future__ import annotations

import csv
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from exatrkx.client import STAGES, ModelStats, stats_delta
from exatrkx.study.network import network_rows, network_section
from exatrkx.study.resources import ASSUMPTIONS, DEFAULT_RATES, Basis, estimate
from exatrkx.study.runner import FLOOR_ROWS, OptionRun, ScanPoint, StudyResult
from exatrkx.study.scaleout import servers_rows, servers_section

#: Models an option (or floor row) sends its requests to.
TOP_MODELS: dict[str, tuple[str, ...]] = {
    "0": (), "1": ("embed", "filter", "gnn"), "2": ("build", "label"), "3": STAGES,
    "4": ("exatrkx",), "5": ("exatrkx_pipeline",),
    "floor_hop": ("identity",), "floor_ensemble5": ("identity_ensemble5",),
}
#: Models whose statistics split an option's server time by stage.
STAGE_MODELS: dict[str, tuple[str, ...]] = {**TOP_MODELS, "4": STAGES}
#: Overhead components, in plotting order.
OVERHEAD = ("client_compute", "transfer", "server_queue", "server_data", "server_compute")
OVERHEAD_TEXT = {
    "client_compute": "client compute (local stages, glue)",
    "transfer": "transfer (serialise, send, receive)",
    "server_queue": "server queue",
    "server_data": "server data in/out (+ ensemble hand-offs)",
    "server_compute": "server compute (infer)",
}
OPTION_TEXT = {
    "0": "in process", "1": "nets remote", "2": "build+label remote",
    "3": "every stage remote", "4": "ensemble", "5": "whole-pipeline model",
    "floor_hop": "floor: identity, 1 hop", "floor_ensemble5": "floor: identity x5 ensemble",
}
CSV_COLUMNS = ("phase", "option", "transport", "concurrency", "instances", "dynamic_batching",
               "repeat", "event", "hits", "ms", *(f"{s}_ms" for s in STAGES), "request_ms",
               "requests")


# ---------------------------------------------------------------------------- numbers

def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return float(statistics.fmean(vals)) if vals else float("nan")


def latency(values: Sequence[float]) -> dict[str, float]:
    """Mean, median and p95 (ms)."""
    return {"ms_per_event": _mean(values), "median_ms": _pct(values, 50),
            "p95_ms": _pct(values, 95)}


def server_split(run: OptionRun, models: Sequence[str]) -> dict[str, dict[str, float]]:
    """Triton's per-request averages of ``models`` plus requests per event."""
    stats = run.server()
    out = {}
    for model in models:
        s = stats.get(model)
        if s is not None:
            out[model] = {**s.to_dict(), "requests_per_event": s.requests / max(run.events, 1)}
    return out


def _per_event(stats: Mapping[str, ModelStats], models: Sequence[str], attr: str,
               events: int) -> float:
    return sum(getattr(stats[m], attr) * stats[m].requests for m in models
               if m in stats) / max(events, 1)


def overhead(key: str, run: OptionRun) -> dict[str, float]:
    """Where an option's ms per event go (see :data:`OVERHEAD_TEXT`); they add up to the mean.

    client compute = total - time in requests; transfer = time in requests - Triton's
    request time; Triton's request time = queue + compute infer + data (the rest: compute
    input/output, copies into and out of the backend, ensemble hand-offs).
    """
    total = _mean(run.times)
    stats = run.server()
    top = TOP_MODELS.get(key, ())
    n = run.events
    request = run.request_ms / max(n, 1)
    server = _per_event(stats, top, "request_ms", n)
    queue = _per_event(stats, top, "queue_ms", n)
    infer = _per_event(stats, top, "compute_infer_ms", n)
    if not top:
        return {"client_compute": total, "transfer": 0.0, "server_queue": 0.0,
                "server_data": 0.0, "server_compute": 0.0}
    return {"client_compute": total - request, "transfer": request - server,
            "server_queue": queue, "server_data": server - queue - infer,
            "server_compute": infer}


def _scan_row(p: ScanPoint) -> dict[str, Any]:
    return {"option": p.option, "transport": p.transport, "concurrency": p.concurrency,
            "instances": p.instances, "dynamic_batching": p.batching,
            "throughput_eps": p.throughput, "latency_mean_ms": _mean(p.latencies),
            "latency_p50_ms": _pct(p.latencies, 50), "latency_p95_ms": _pct(p.latencies, 95),
            "server_cpu_ms_per_event": (p.cpu_server_s * 1e3 / p.events if p.option
                                        else 0.0),
            "client_cpu_ms_per_event": p.cpu_client_s * 1e3 / max(p.events, 1),
            "events": p.events, "identical_labels": p.mismatched == 0,
            "server": {m: s.to_dict() for m, s in stats_delta({}, p.stats).items()}}


def resource_basis(result: StudyResult) -> Basis | None:
    """The best whole-event remote point and the best option-0 point."""
    points = [p for p in [*result.scan, *result.server_scan] if p.option in (4, 5)]
    local = [p for p in result.scan if p.option == 0]
    if not points:
        return None
    best = max(points, key=lambda p: p.throughput)
    best_local = max(local, key=lambda p: p.throughput) if local else None
    hits = result.event_hits
    return Basis(
        label=(f"option {best.option}, concurrency {best.concurrency}, {best.instances} "
               f"instance(s), dynamic batching {'on' if best.batching else 'off'}"),
        throughput_eps=best.throughput,
        server_cpu_ms=best.cpu_server_s * 1e3 / max(best.events, 1),
        client_cpu_ms=best.cpu_client_s * 1e3 / max(best.events, 1),
        local_cpu_ms=(best_local.cpu_client_s * 1e3 / max(best_local.events, 1)
                      if best_local else float("nan")),
        local_throughput_eps=best_local.throughput if best_local else float("nan"),
        machine_cores=result.machine_cores, mean_hits=_mean(hits))


def summarize(result: StudyResult) -> dict[str, Any]:
    """The JSON summary (``options``, ``identical_labels``, ``floor``, ``concurrency``, ...)."""
    cfg = result.config
    head = cfg.protocols[0]
    main = result.main.get(head, {})
    options: dict[str, Any] = {}
    ref = _mean(main["0"].times) if "0" in main else float("nan")
    hop = _mean(main[FLOOR_ROWS["hop"]].times) if main else float("nan")
    ens5 = _mean(main[FLOOR_ROWS["ensemble5"]].times) if main else float("nan")
    for opt in map(str, cfg.timed_options):
        run = main[opt]
        mismatched = set().union(*(result.main[t][opt].mismatched for t in result.main))
        requests = sum(s.requests for m, s in run.server().items()
                       if m in TOP_MODELS[opt]) / max(run.events, 1)
        floor_equiv = (0.0 if opt == "0" else ens5 if opt == "4" else requests * hop)
        options[opt] = {
            **latency(run.times),
            "stages_ms": {k: v / max(run.events, 1) for k, v in run.stage_sums.items()},
            "server_ms": server_split(run, STAGE_MODELS[opt]),
            "overhead_ms": overhead(opt, run),
            "offload_ms": _mean(run.times) - ref,
            "floor_equivalent_ms": floor_equiv,
            "requests_per_event": requests,
            "cpu_ms_per_event": {"client": run.cpu_client_s * 1e3 / max(run.events, 1),
                                 "server": run.cpu_server_s * 1e3 / max(run.events, 1)},
            "identical_labels": not mismatched,
            "mismatched_events": len(mismatched),
            "transports": {t: latency(result.main[t][opt].times) for t in result.main},
            "description": OPTION_TEXT[opt],
        }
    floor = {"hop_ms": hop, "ensemble5_ms": ens5,
             "transports": {t: {"hop_ms": _mean(r[FLOOR_ROWS["hop"]].times),
                                "ensemble5_ms": _mean(r[FLOOR_ROWS["ensemble5"]].times)}
                            for t, r in result.main.items()}}
    concurrency: dict[str, dict[str, Any]] = {}
    for p in result.scan:
        row = _scan_row(p)
        row.pop("server")
        concurrency.setdefault(str(p.option), {})[str(p.concurrency)] = row
    basis = resource_basis(result)
    resources: dict[str, Any] = {"basis": None, "table": [], "assumptions": list(ASSUMPTIONS)}
    if basis is not None:
        resources["basis"] = dict(vars(basis))
        resources["table"] = [n.to_dict() for n in estimate(basis, DEFAULT_RATES)]
        resources["utilisation"] = 0.7
    scans_ok = all(p.mismatched == 0 for p in result.scan)
    return {
        "options": options,
        "identical_labels": all(o["identical_labels"] for o in options.values()) and scans_ok,
        "floor": floor,
        "concurrency": concurrency,
        "server_scan": [_scan_row(p) for p in result.server_scan],
        "server_scan_identical_labels": all(p.mismatched == 0 for p in result.server_scan),
        "perf_analyzer": {"available": result.perf.available, "reason": result.perf.reason,
                          "rows": result.perf.rows, "errors": result.perf.errors},
        "resources": resources,
        "transport": head,
        "transports": list(result.main),
        "events": len(result.event_hits),
        "mean_hits": _mean(result.event_hits),
        "events_source": result.origin,
        "weights": result.weights,
        "server": result.server,
        "repeats": cfg.repeats,
        "torch_threads": cfg.threads,
        "machine_cores": result.machine_cores,
        "quick": cfg.quick,
        "notes": list(result.notes),
        "wall_s": result.wall_s,
        "network": network_rows(result.network),
        "servers": servers_rows(result.servers),
        "prometheus": result.prometheus,
    }


def jsonable(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------- files

def write_csv(result: StudyResult, path: Path) -> Path:
    """Raw per-event timings, one row per timed event (``CSV_COLUMNS``)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in result.records:
            stages = [_num(r.stages.get(s)) for s in STAGES]
            writer.writerow([r.phase, r.option, r.transport, r.concurrency, r.instances,
                             int(r.batching), r.repeat, r.event, r.hits, f"{r.ms:.4f}",
                             *stages, f"{r.request_ms:.4f}", r.requests])
    os.replace(tmp, path)
    return path


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


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
    model_opt = {"exatrkx": "4", "exatrkx_pipeline": "5"}
    for model, opt in model_opt.items():
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
    keys = [*STAGES, "exatrkx", "exatrkx_pipeline"]
    for key in keys:
        vals = np.array([summary["options"][o]["stages_ms"].get(key, 0.0) for o in opts])
        if vals.any():
            ax_s.bar(names, vals, bottom=bottom, label=key)
            bottom += vals
    ax_s.set(ylabel="ms per event", title="per-stage split, client side")
    _top(ax_s, bottom)
    rows = [*opts, "hop", "ensemble5"]
    floor = summary["floor"]
    bottom = np.zeros(len(rows))
    for comp in OVERHEAD:
        vals = [max(summary["options"][o]["overhead_ms"][comp], 0.0) for o in opts]
        vals += [floor["hop_ms"] if comp == "transfer" else 0.0,
                 floor["ensemble5_ms"] if comp == "transfer" else 0.0]
        arr = np.nan_to_num(np.array(vals, dtype=float))
        ax_o.bar([*names, "floor\n1 hop", "floor\nx5 ens."], arr, bottom=bottom,
                 label=OVERHEAD_TEXT[comp])
        bottom += arr
    ax_o.set(ylabel="ms per event", title="where the time goes (floor: whole round trip)")
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
    keys = [k for k in runs if runs[k].times]
    data = [runs[k].times for k in keys]
    ax_o.boxplot(data, showfliers=True, whis=(5, 95))
    ax_o.set_xticks(range(1, len(keys) + 1),
                    [k.replace("floor_", "floor\n") if k.startswith("floor") else f"S{k}"
                     for k in keys])
    ax_o.set_yscale("log")
    ax_o.set(ylabel="ms per event", title=f"per option ({head}; whiskers 5-95 %)")
    for transport, trs in result.main.items():
        for key in ("0", "4", "5"):
            if key in trs and trs[key].times:
                values = np.sort(trs[key].times)
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
    x = np.arange(len(opts) + 2)
    for i, t in enumerate(transports):
        vals = [summary["options"][o]["transports"][t]["ms_per_event"] for o in opts]
        vals += [summary["floor"]["transports"][t]["hop_ms"],
                 summary["floor"]["transports"][t]["ensemble5_ms"]]
        ax.bar(x + i * width, np.nan_to_num(np.array(vals, dtype=float)), width, label=t)
    ax.set_xticks(x + width * (len(transports) - 1) / 2,
                  [*(f"S{o}" for o in opts), "floor 1 hop", "floor x5"])
    ax.set(ylabel="mean ms per event", title="transports")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_server_scan(summary: Mapping[str, Any], path: Path) -> Path:
    """Throughput of the remote options per server setting and concurrency."""
    fig, (ax,) = _figure(9, 4.0)
    rows = summary["server_scan"]
    settings = sorted({(r["instances"], r["dynamic_batching"], r["concurrency"])
                       for r in rows})
    opts = sorted({r["option"] for r in rows})
    width = 0.8 / max(len(settings), 1)
    for i, (inst, batch, conc) in enumerate(settings):
        vals = []
        for o in opts:
            match = [r["throughput_eps"] for r in rows if (r["option"], r["instances"],
                     r["dynamic_batching"], r["concurrency"]) == (o, inst, batch, conc)]
            vals.append(match[0] if match else 0.0)
        ax.bar(np.arange(len(opts)) + i * width, vals, width,
               label=f"{inst} inst., batching {'on' if batch else 'off'}, {conc} in flight")
    ax.set_xticks(np.arange(len(opts)) + width * (len(settings) - 1) / 2,
                  [f"S{o}" for o in opts])
    ax.set(ylabel="events / s", title="model instances and dynamic batching")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


# ---------------------------------------------------------------------------- text

def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def summary_text(summary: Mapping[str, Any]) -> str:
    """The plain-text summary table printed to stdout."""
    lines = [f"ExaTrkX as a Service study: {summary['events']} events "
             f"({summary['mean_hits']:.0f} hits on average), transport {summary['transport']}, "
             f"{summary['repeats']} repeat(s), {summary['weights']}", ""]
    head = (f"{'option':<28}{'mean ms':>9}{'median':>9}{'p95':>9}{'offload':>9}"
            f"{'floor eq.':>10}  labels")
    lines += [head, "-" * len(head)]
    for opt, o in summary["options"].items():
        lines.append(f"{'S' + opt + ' ' + o['description']:<28}{_f(o['ms_per_event']):>9}"
                     f"{_f(o['median_ms']):>9}{_f(o['p95_ms']):>9}{_f(o['offload_ms']):>9}"
                     f"{_f(o['floor_equivalent_ms']):>10}  "
                     f"{'same' if o['identical_labels'] else 'DIFFERENT'}")
    fl = summary["floor"]
    lines += [f"{'floor: identity, 1 hop':<28}{_f(fl['hop_ms']):>9}",
              f"{'floor: identity x5 ensemble':<28}{_f(fl['ensemble5_ms']):>9}", ""]
    if len(summary["transports"]) > 1:
        lines.append("mean ms per event by transport: " + ", ".join(summary["transports"]))
        for opt, o in summary["options"].items():
            lines.append(f"  S{opt}: " + "  ".join(
                f"{t} {_f(v['ms_per_event'])}" for t, v in o["transports"].items()))
        lines.append("")
    if summary["concurrency"]:
        levels = sorted({int(c) for v in summary["concurrency"].values() for c in v})
        lines.append("throughput (events/s) by events in flight: "
                     + " ".join(f"{c:>7}" for c in levels))
        for opt, rows in summary["concurrency"].items():
            lines.append(f"  S{opt} {OPTION_TEXT[opt]:<30}" + " ".join(
                f"{_f(rows[str(c)]['throughput_eps'], 1) if str(c) in rows else '':>7}"
                for c in levels))
        lines.append("")
    perf = summary["perf_analyzer"]
    if perf["rows"]:
        lines.append("perf_analyzer (events/s, p95 ms): " + "; ".join(
            f"{r['model']} c{r['concurrency']} {_f(r['throughput_infer_per_s'], 1)}/"
            f"{_f(r['latency_p95_ms'], 1)}" for r in perf["rows"]))
    elif not perf["available"]:
        lines.append(perf["reason"])
    lines.append(f"identical labels across options: "
                 f"{'yes' if summary['identical_labels'] else 'NO'}; "
                 f"wall time {summary['wall_s']:.0f} s")
    return "\n".join(lines)


def report_markdown(result: StudyResult, summary: Mapping[str, Any],
                    plots: Mapping[str, str]) -> str:
    """The Markdown report."""
    cfg = result.config
    opts = summary["options"]
    head = summary["transport"]
    md = ["# ExaTrkX as a Service: timing study", ""]
    md += [f"- events: {summary['events']} from {summary['events_source']} "
           f"({summary['mean_hits']:.0f} hits on average, min {min(result.event_hits)}, "
           f"max {max(result.event_hits)})",
           f"- weights: {summary['weights']}",
           f"- server: {summary['server']}, Triton from the nvidia-pytriton wheel, CPU only",
           f"- machine: {summary['machine_cores']} cores, shared by client, server and other "
           "users: figures are noisy",
           f"- torch intra-op threads: {cfg.threads} in the client and in every backend stub",
           f"- main run: {cfg.repeats} pass(es) over the events per option and transport, "
           f"after {cfg.warmup} warm-up event(s); the order of the options rotates between "
           "passes; headline transport: " + head,
           f"- wall time of the study: {summary['wall_s']:.0f} s"
           + (" (`--quick`: fewer events, repeats and scan points)" if cfg.quick else ""),
           ""]
    md += ["## Service options", "",
           "Per event, client side, over every event of every pass (ms). *offload* = mean "
           "minus option 0's mean; *floor eq.* = what Triton's own floor would cost for the "
           "same requests (the option's requests per event x one identity hop; option 4: one "
           "identity 5-step ensemble), same payload and transport, same run.", ""]
    md += _table(["option", "", "mean", "median", "p95", "offload", "floor eq.",
                  "requests/event", "identical labels"],
                 [[f"S{o}", v["description"], v["ms_per_event"], v["median_ms"], v["p95_ms"],
                   v["offload_ms"], v["floor_equivalent_ms"], v["requests_per_event"],
                   v["identical_labels"] if v["mismatched_events"] == 0
                   else f"no ({v['mismatched_events']} events)"] for o, v in opts.items()])
    md += [f"Triton's floor ({head}): identity model {_f(summary['floor']['hop_ms'])} ms, "
           f"identity 5-step ensemble {_f(summary['floor']['ensemble5_ms'])} ms per event.",
           f"Labels are compared with option 0's per event, on every transport and pass: "
           f"**{'identical' if summary['identical_labels'] else 'NOT identical'}**.", ""]
    md += [f"![stages]({plots['stages']})", ""]
    md += ["### Per-stage split, client side (ms per event)", ""]
    keys = [*STAGES, "exatrkx", "exatrkx_pipeline"]
    md += _table(["option", *keys],
                 [[f"S{o}", *(v["stages_ms"].get(k) for k in keys)] for o, v in opts.items()])
    md += ["### Server side (Triton statistics, ms per request)", "",
           "Option 4's row per stage is the ensemble's composing models; option 5 runs every "
           "stage inside one model, so Triton sees only the whole.", ""]
    rows = []
    for o, v in opts.items():
        for model, s in v["server_ms"].items():
            rows.append([f"S{o}", model, s["requests_per_event"], s["request_ms"],
                         s["queue_ms"], s["compute_input_ms"], s["compute_infer_ms"],
                         s["compute_output_ms"]])
    md += _table(["option", "model", "requests/event", "request", "queue", "compute input",
                  "compute infer", "compute output"], rows)
    md += ["### Overhead decomposition (ms per event)", "",
           "As in the original study: data preparation, transfer, compute. The parts add up "
           "to the mean: *client compute* = the event's time outside requests (local stages "
           "and glue); *transfer* = time in requests minus Triton's request time "
           "(serialisation, the transport, gRPC/HTTP handling); Triton's request time = "
           "*queue* + *data in/out* (compute input/output: copies into and out of the "
           "Python-backend stub, plus ensemble hand-offs) + *compute* (compute infer).", ""]
    md += _table(["option", *(OVERHEAD_TEXT[c] for c in OVERHEAD), "offload", "floor eq."],
                 [[f"S{o}", *(v["overhead_ms"][c] for c in OVERHEAD), v["offload_ms"],
                   v["floor_equivalent_ms"]] for o, v in opts.items()])
    md += ["## Transports", "",
           "Same events and options over gRPC, HTTP and gRPC with Triton system shared "
           "memory (tensors in shared-memory regions, the client on the server's host); "
           "mean / p95 ms per event.", ""]
    transports = summary["transports"]
    md += _table(["option", *transports],
                 [[f"S{o}", *(f"{_f(v['transports'][t]['ms_per_event'])} / "
                              f"{_f(v['transports'][t]['p95_ms'])}" for t in transports)]
                  for o, v in opts.items()]
                 + [["floor 1 hop", *(summary["floor"]["transports"][t]["hop_ms"]
                                      for t in transports)],
                    ["floor x5 ensemble", *(summary["floor"]["transports"][t]["ensemble5_ms"]
                                            for t in transports)]])
    md += [f"![transports]({plots['transports']})", "",
           f"![latency]({plots['latency']})", ""]
    md += ["## Concurrency", "",
           f"Events in flight at once ({head}): option 0 runs a thread pool of in-process "
           "pipelines (one per thread, torch ops release the GIL; torch intra-op threads "
           f"{cfg.threads}, so N threads use up to N cores); options 4 and 5 keep N requests "
           f"in flight, one connection each. {cfg.repeats} pass(es) per point. CPU per event "
           "comes from /proc (10 ms ticks, so coarse for short runs); server CPU is the "
           "Triton process group (server and backend stubs).", ""]
    crow = []
    for o, levels in summary["concurrency"].items():
        for c in sorted(levels, key=int):
            r = levels[c]
            crow.append([f"S{o}", int(c), r["throughput_eps"], r["latency_mean_ms"],
                         r["latency_p50_ms"], r["latency_p95_ms"],
                         r["client_cpu_ms_per_event"], r["server_cpu_ms_per_event"]])
    md += _table(["option", "in flight", "events/s", "mean ms", "p50 ms", "p95 ms",
                  "client CPU ms/event", "server CPU ms/event"], crow)
    md += [f"![concurrency]({plots['concurrency']})", ""]
    md += ["## Model instances and dynamic batching", "",
           "Each setting is a freshly started server; every model gets the same instance "
           "count (each Python-backend instance is its own stub process). The repository "
           "writer supports dynamic batching only for the **embed** and **filter** models "
           "(per-hit and per-edge nets, where concatenating events is exact); build, gnn, "
           "label, the ensemble and the whole-pipeline model have no batcher, so option 5 "
           "cannot gain from it and options 1, 3, 4 only in those two stages. One pass per "
           "point.", ""]
    md += _table(["option", "instances", "dynamic batching", "in flight", "events/s",
                  "p50 ms", "p95 ms", "server CPU ms/event", "identical labels"],
                 [[f"S{r['option']}", r["instances"], r["dynamic_batching"], r["concurrency"],
                   r["throughput_eps"], r["latency_p50_ms"], r["latency_p95_ms"],
                   r["server_cpu_ms_per_event"], r["identical_labels"]]
                  for r in summary["server_scan"]])
    if not cfg.batching_scan or len(cfg.instances) < 2:
        md += ["Scans limited by the settings of this run"
               + (" (`--quick`)." if cfg.quick else "."), ""]
    md += [f"![server scan]({plots['server_scan']})", ""]
    md += _perf_section(summary)
    md += _resource_section(summary)
    if summary["network"]:
        md += network_section(summary["network"], _f)
    if summary.get("servers"):
        md += servers_section(summary["servers"], summary["machine_cores"], _f)
    md += _prometheus_section(summary)
    if summary["notes"]:
        md += ["## Notes", "", *(f"- {n}" for n in summary["notes"]), ""]
    md += ["## Files", "", "- `timings.csv`: every timed event (phase, option, transport, "
           "concurrency, instances, dynamic_batching, repeat, event, hits, ms, per-stage ms, "
           "ms in requests, requests)",
           *(f"- `{p}`" for p in plots.values()), ""]
    return "\n".join(md)


def _perf_section(summary: Mapping[str, Any]) -> list[str]:
    perf = summary["perf_analyzer"]
    md = ["## perf_analyzer", ""]
    if not perf["available"]:
        return [*md, f"Not run: {perf['reason']}.", ""]
    md += ["Triton's own load tool against the same server, with the same events as JSON "
           "input data (gRPC, short time windows, loose stability: a rough check of our "
           "figures, not a second measurement campaign). perf_analyzer itself runs on the "
           "same cores as the server, so on a small machine it lowers what it measures. "
           "Ours: the concurrency scan.", ""]
    ours = summary["concurrency"]
    rows = []
    for r in perf["rows"]:
        opt = "4" if r["model"] == "exatrkx" else "5"
        mine = ours.get(opt, {}).get(str(r["concurrency"]))
        rows.append([r["model"], r["concurrency"], r["throughput_infer_per_s"],
                     r["latency_p50_ms"], r["latency_p95_ms"], r.get("server_queue_ms"),
                     r.get("server_compute_infer_ms"),
                     mine["throughput_eps"] if mine else None,
                     mine["latency_p50_ms"] if mine else None,
                     mine["latency_p95_ms"] if mine else None])
    md += _table(["model", "in flight", "PA events/s", "PA p50", "PA p95", "PA queue",
                  "PA infer", "ours events/s", "ours p50", "ours p95"], rows)
    md += [f"- {m} failed: {e}" for m, e in perf["errors"].items()]
    return [*md, ""]


def _prometheus_section(summary: Mapping[str, Any]) -> list[str]:
    prom = summary.get("prometheus") or {}
    if not prom.get("models"):
        return []
    md = ["## Server-side utilisation (Prometheus)", "",
          f"Triton's metrics endpoint read before and after the main run and the concurrency "
          f"scan ({_f(prom['wall_s'], 0)} s): per-model averages of the counter increases "
          "(µs per request; queue per execution is what the cluster autoscaler watches; busy = "
          "compute time over the window, summed over instances).", ""]
    rows = [[m, u["requests"], u["executions"], u["queue_us_per_exec"], u["request_us"],
             u["queue_us"], u["compute_input_us"], u["compute_infer_us"],
             u["compute_output_us"], u["busy_fraction"]]
            for m, u in sorted(prom["models"].items())]
    md += _table(["model", "requests", "executions", "queue/exec", "request", "queue",
                  "compute input", "compute infer", "compute output", "busy"], rows)
    for name, g in sorted(prom.get("gauges", {}).items()):
        md.append(f"- {name}: mean {_f(g['mean'], 3)}, max {_f(g['max'], 3)} "
                  f"({g['samples']} samples, 1 s apart)")
    return [*md, ""]


def _resource_section(summary: Mapping[str, Any]) -> list[str]:
    res = summary["resources"]
    md = ["## Resource estimate", ""]
    basis = res["basis"]
    if basis is None:
        return [*md, "No whole-event remote option was timed; no estimate.", ""]
    md += [f"Basis: {basis['label']}: {_f(basis['throughput_eps'], 1)} events/s per server "
           f"on this {basis['machine_cores']}-core machine, "
           f"{_f(basis['server_cpu_ms'], 1)} ms server CPU and "
           f"{_f(basis['client_cpu_ms'], 1)} ms client CPU per event; in-process option 0: "
           f"{_f(basis['local_throughput_eps'], 1)} events/s, "
           f"{_f(basis['local_cpu_ms'], 1)} ms CPU per event. Planned utilisation "
           f"{res.get('utilisation', 0.7):.0%}.", ""]
    md += _table(["event rate", "servers like this one", "server cores", "client cores",
                  "cores if in process (S0)", "network Mbit/s"],
                 [[f"{n['rate_hz']:g} Hz", n["servers"], n["server_cores"],
                   n["client_cores"], n["local_cores"], n["network_mbit_s"]]
                  for n in res["table"]])
    md += ["Assumptions:", "", *(f"- {a}" for a in res["assumptions"]), ""]
    return md


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
    write_csv(result, out / "timings.csv")
    (out / "report.md").write_text(report_markdown(result, summary, plots))
    return summary
