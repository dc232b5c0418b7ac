"""The study's text: ``report.md`` and the plain-text summary printed by ``exatrkx study``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from exatrkx.acts.settings import SOURCES
from exatrkx.contract import STAGES
from exatrkx.physics.samples import QUANTITIES
from exatrkx.study.analysis import (
    FLOOR_TEXT,
    MODEL_OPTION,
    OVERHEAD,
    OVERHEAD_TEXT,
    WHOLE_EVENT_MODELS,
)
from exatrkx.study.network import network_section
from exatrkx.study.results import StudyResult
from exatrkx.study.scaleout import servers_section


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10.0 ** -digits * 5:
            # a small rate or fraction keeps two significant digits
            return np.format_float_positional(value, precision=2, fractional=False, trim="-")
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _ci(value: Mapping[str, float] | None, digits: int = 2) -> str:
    """``median [lo, hi]``."""
    if not value:
        return "n/a"
    return (f"{_f(value['median'], digits)} [{_f(value['lo'], digits)}, "
            f"{_f(value['hi'], digits)}]")


INDICATIVE = ("`--quick`: few events and one pass: every ratio and difference here is "
              "indicative only; read the 95 % intervals, not the medians")


def _setting(instances: int, batching: bool) -> str:
    return f"{instances} inst., batching {'on' if batching else 'off'}"


def scan_table(summary: Mapping[str, Any]) -> tuple[list[int], list[list[Any]]]:
    """The throughput scan as rows ``[option, instances, batching, eps per level...]``."""
    rows = summary["server_scan"]
    levels = sorted({r["concurrency"] for r in rows})
    keys = sorted({(r["option"], r["instances"], r["dynamic_batching"]) for r in rows})
    table = []
    for key in keys:
        eps = {r["concurrency"]: r["throughput_eps"] for r in rows
               if (r["option"], r["instances"], r["dynamic_batching"]) == key}
        table.append([f"S{key[0]}", key[1], key[2], *(eps.get(c) for c in levels)])
    return levels, table


def summary_text(summary: Mapping[str, Any]) -> str:
    """The plain-text summary table printed to stdout."""
    lines = [f"ExaTrkX as a Service study: {summary['events']} events "
             f"({summary['mean_hits']:.0f} hits on average), transport {summary['transport']}, "
             f"{summary['repeats']} repeat(s), {summary['weights']}"]
    if summary["quick"]:
        lines.append(INDICATIVE)
    lines.append("")
    head = (f"{'option':<28}{'mean ms':>9}{'median':>9}{'p95':>9}{'offload':>9}"
            f"  {'paired overhead [95% CI]':<26}labels")
    lines += [head, "-" * len(head)]
    for opt, o in summary["options"].items():
        lines.append(f"{'S' + opt + ' ' + o['description']:<28}{_f(o['ms_per_event']):>9}"
                     f"{_f(o['latency_p50_ms']):>9}{_f(o['latency_p95_ms']):>9}"
                     f"{_f(o['offload_ms']):>9}  {_ci(o['paired_overhead_ms']):<26}"
                     f"{'same' if o['identical_labels'] else 'DIFFERENT'}")
    fl = summary["floor"]
    for key, text in FLOOR_TEXT.items():
        lines.append(f"{text:<28}{'':>27}{_ci(fl['intervals'][f'{key}_ms']):>26}")
    lines.append("")
    if len(summary["transports"]) > 1:
        lines.append("median paired overhead (ms) by transport: "
                     + ", ".join(summary["transports"]))
        for opt, o in summary["options"].items():
            lines.append(f"  S{opt}: " + "  ".join(
                f"{t} {_f(v['paired_overhead_ms']['median'])}"
                for t, v in o["transports"].items()))
        lines.append("")
    if summary["server_scan"]:
        levels, table = scan_table(summary)
        lines.append("throughput (events/s, median of passes) by events in flight: "
                     + " ".join(f"{c:>7}" for c in levels))
        for row in table:
            lines.append(f"  {row[0]} {_setting(row[1], row[2]):<30}"
                         + " ".join(f"{_f(v, 1):>7}" for v in row[3:]))
        best = summary["best_served"]
        if best:
            lines.append(f"best served: option {best['option']}, "
                         f"{_setting(best['instances'], best['batching'])}: "
                         f"{_f(best['throughput_eps_8'], 1)} events/s")
        lines.append("")
    for t in summary["targets"]:
        verdict = ("met" if t["met"] else "MISSED") + ("" if t["conclusive"] else
                                                        " (interval spans the limit)")
        lines.append(f"target: {t['name']}: {_ci(t)} {t['unit']} (limit {_f(t['limit'])}) "
                     f"{verdict}")
    if summary["targets"]:
        lines.append("")
    perf = summary["perf_analyzer"]
    if perf["rows"]:
        lines.append("perf_analyzer (events/s, p95 ms): " + "; ".join(
            f"{r['model']} c{r['concurrency']} {_f(r['throughput_infer_per_s'], 1)}/"
            f"{_f(r['latency_p95_ms'], 1)}" for r in perf["rows"]))
    elif not perf["available"]:
        lines.append(perf["reason"])
    if summary.get("chain"):
        chain = summary["chain"]
        lines.append(f"ACTS chain, {chain['events']} events (efficiency / r > 10 mm / fake, "
                     "finding and chain ms per event):")
        for r in chain["rows"]:
            lines.append(f"  {r['finder']:<32}{_f(r['track_efficiency'], 4):>8}"
                         f"{_f(r['track_efficiency_displaced'], 4):>8}"
                         f"{_f(r['fake_rate'], 4):>8}{_f(r['finding_ms_per_event'], 1):>8}"
                         f"{_f(r['ms_per_event'], 1):>8}")
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
           f"- server: {summary['server']}, Triton from the nvidia-pytriton wheel, models on "
           f"{summary['device']}",
           f"- machine: {summary['machine_cores']} cores, shared by client, server and other "
           "users: figures are noisy",
           f"- torch intra-op threads: {cfg.threads} in the client and in every backend stub",
           f"- main run: {cfg.repeats} pass(es) over the events per option and transport, "
           f"after {cfg.warmup} warm-up event(s); the order of the options rotates between "
           "passes; headline transport: " + head,
           f"- wall time of the study: {summary['wall_s']:.0f} s"
           + (" (`--quick`: fewer events, repeats and scan points)" if cfg.quick else ""),
           ""]
    if cfg.quick:
        md += [f"**{INDICATIVE}.**", ""]
    md += ["## Service options", "",
           "Per event, client side, over every event of every pass (ms). The options run "
           "interleaved per event: each event goes through every option and floor model "
           "(the order rotating) before the next, so they see the same machine load. "
           "*paired overhead* = per event, option minus option 0 (median over its passes), "
           "then the median over the events with a bootstrap 95 % interval; *offload* = mean "
           "minus option 0's mean; *floor eq.* = what Triton's identity floor would cost for "
           "the same requests (requests per event x one identity hop; option 4: the 5-step "
           "identity ensemble), same payload and transport, same run.", ""]
    md += _table(["option", "", "mean", "median", "p95", "paired overhead [95% CI]",
                  "offload", "floor eq.", "requests/event", "identical labels"],
                 [[f"S{o}", v["description"], v["ms_per_event"], v["latency_p50_ms"],
                   v["latency_p95_ms"], _ci(v["paired_overhead_ms"]),
                   v["offload_ms"], v["floor_equivalent_ms"], v["requests_per_event"],
                   v["identical_labels"] if v["mismatched_events"] == 0
                   else f"no ({v['mismatched_events']} events)"] for o, v in opts.items()])
    md += ["### Floors", "",
           "Triton's own cost with the same payload, transport and server settings, timed "
           "beside the options (median ms per event [95 % interval]): *identity* returns "
           "its input without reading it; *touch* reads every input element and writes "
           "outputs of the real stages' sizes (this event's embedding, build edges, kept "
           "edges, scores, labels), one hop like option 5 or a 5-step ensemble like option "
           "4. What our models cost beyond the touch floor is validation, the first reads "
           "of shared memory, our compute's hand-offs, and the compute itself.", ""]
    md += _table(["floor", head],
                 [[text, _ci(summary["floor"]["intervals"][f"{key}_ms"])]
                  for key, text in FLOOR_TEXT.items()])
    md += [f"Labels are compared with option 0's per event, on every transport and pass: "
           f"**{'identical' if summary['identical_labels'] else 'NOT identical'}**.", ""]
    md += _targets_section(summary)
    md += [f"![stages]({plots['stages']})", ""]
    md += ["### Per-stage split, client side (ms per event)", ""]
    keys = [*STAGES, *WHOLE_EVENT_MODELS]
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
           "mean / p95 ms per event, and the paired overhead (median).", ""]
    transports = summary["transports"]
    md += _table(["option", *transports],
                 [[f"S{o}", *(f"{_f(v['transports'][t]['ms_per_event'])} / "
                              f"{_f(v['transports'][t]['latency_p95_ms'])} "
                              f"(+{_f(v['transports'][t]['paired_overhead_ms']['median'])})"
                              for t in transports)]
                  for o, v in opts.items()]
                 + [[text, *(summary["floor"]["transports"][t][f"{key}_ms"]
                             for t in transports)] for key, text in FLOOR_TEXT.items()])
    md += [f"![transports]({plots['transports']})", "",
           f"![latency]({plots['latency']})", ""]
    main = summary["main_server"]
    md += ["## Throughput scan", "",
           f"Events in flight at once ({head}): option 0 runs a thread pool of in-process "
           "pipelines (one per thread, torch ops release the GIL; torch intra-op threads "
           f"{cfg.threads}, so N threads use up to N cores); the remote options keep N "
           "requests in flight, one connection each. Each server setting is a freshly "
           "started server (the main one: "
           f"{_setting(main['instances'], main['batching'])}); on each, every point (option "
           f"0 included, beside the served ones) gets {cfg.repeats} pass(es) over the "
           "events, the points interleaved per pass; events/s is the median over the "
           "passes. With batching on, Triton's dynamic batcher serves "
           + (", ".join(f"**{m}**" for m in summary["batched_models"]) or "no model")
           + " (the ensemble batches in its steps): several events per execution, run as "
           "one disjoint graph.", ""]
    levels, table = scan_table(summary)
    md += _table(["option", "instances", "dynamic batching",
                  *(f"{c} in flight" for c in levels)], table)
    best = summary["best_served"]
    if best:
        md += [f"Best served setting (events/s at "
               f"{8 if 8 in levels else max(levels)} in flight): **option {best['option']}, "
               f"{_setting(best['instances'], best['batching'])}, "
               f"{_f(best['throughput_eps_8'], 1)} events/s**.", ""]
    if not cfg.batching_scan or len(cfg.instances) < 2:
        md += ["Scan limited by the settings of this run"
               + (" (`--quick`)." if cfg.quick else "."), ""]
    md += [f"![throughput scan]({plots['server_scan']})", ""]
    md += ["### Main server, latency and CPU", "",
           "CPU per event comes from /proc (10 ms ticks, so coarse for short runs); server "
           "CPU is the Triton process group (server and backend stubs).", ""]
    crow = []
    for o, lv in summary["concurrency"].items():
        for c in sorted(lv, key=int):
            r = lv[c]
            crow.append([f"S{o}", int(c), r["throughput_eps"], r["latency_mean_ms"],
                         r["latency_p50_ms"], r["latency_p95_ms"],
                         r["client_cpu_ms_per_event"], r["server_cpu_ms_per_event"]])
    md += _table(["option", "in flight", "events/s", "mean ms", "p50 ms", "p95 ms",
                  "client CPU ms/event", "server CPU ms/event"], crow)
    md += [f"![concurrency]({plots['concurrency']})", ""]
    md += _perf_section(summary)
    md += _resource_section(summary)
    if summary.get("chain"):
        md += _chain_section(summary["chain"], plots.get("chain_radius"))
    if summary["network"]:
        md += network_section(summary["network"], _f)
    if summary.get("servers"):
        md += servers_section(summary["servers"], summary["machine_cores"], _f)
    md += _prometheus_section(summary)
    md += _simulation_section(summary, plots)
    if summary["notes"]:
        md += ["## Notes", "", *(f"- {n}" for n in summary["notes"]), ""]
    md += ["## Files", "", "- `timings.csv`: every timed event (phase, option, transport, "
           "concurrency, instances, dynamic_batching, repeat, event, hits, ms, per-stage ms, "
           "ms in requests, requests)",
           *(f"- `{p}`" for p in plots.values()), ""]
    return "\n".join(md)


def _targets_section(summary: Mapping[str, Any]) -> list[str]:
    if not summary["targets"]:
        return []
    md = ["### Targets", "",
          "Each with its 95 % interval (bootstrap over the events; the throughput ratio: the "
          "range over the passes, each pass of the served point against option 0's pass "
          "beside it). *conclusive*: the whole interval lies on one side of the limit.", ""]
    md += _table(["target", "median [interval]", "limit", "met", "conclusive"],
                 [[t["name"], f"{_ci(t)} {t['unit']}", t["limit"], t["met"], t["conclusive"]]
                  for t in summary["targets"]])
    return md


def _chain_section(chain: Mapping[str, Any], plot: str | None) -> list[str]:
    """Our finder as a service inside ACTS against ACTS' CKF (:mod:`exatrkx.study.chain`)."""
    md = ["## GNN as a service against the CKF in process", "",
          f"{chain['events']} events with truth from `{chain['source']}` "
          f"({_f(chain['hits_per_event'], 0)} hits on average), read into ACTS "
          "(`exatrkx chain`, `exatrkx.acts`). Our finder sends each event's spacepoints "
          "through the service option and hands its tracks to ACTS (starting parameters from "
          "three spacepoints, Kalman fit); ACTS' CKF (pixel seeds, combinatorial Kalman "
          "filter, greedy ambiguity resolution) runs with ACTS' own generic-detector settings "
          "(below). Both get the same selection after the fit (pT >= 0.5 GeV, |eta| < 3, "
          ">= 5 measurements) and one scoring: double majority (> 50% both ways; ACTS' own "
          "matcher uses >= 50%), efficiency over particles with pT > 1 GeV and >= 5 hits "
          "(*r > 10 mm*: those produced beyond 10 mm from the beam; *|eta| < 3*: those within "
          "the selection's acceptance), fakes and duplicates over tracks; resolutions are half "
          "the width of the central 68% of the matched reconstructable particles' residuals. "
          "Times are ms per event on one thread: *finding* = up to the finder's tracks (ours: "
          "spacepoints, the request, proto-tracks; the CKF: seeding, CKF, ambiguity "
          "resolution), *chain* = finding + fit + selection. Each event passes the four "
          "finders in turn, so they share the machine's load.", ""]
    md += _table(["finder", "efficiency", "r > 10 mm", r"\|eta\| < 3", "fake", "duplicate",
                  "pT res. (rel.)", "d0 res. mm", "fit failures", "finding ms", "chain ms"],
                 [[r["finder"], _f(r["track_efficiency"], 4),
                   _f(r["track_efficiency_displaced"], 4),
                   _f(r["track_efficiency_abs_eta_lt_3"], 4), _f(r["fake_rate"], 4),
                   _f(r["duplicate_rate"], 4), _f(r["pt_resolution"], 4),
                   _f(r["d0_resolution_mm"], 4),
                   "n/a" if r["fit_failures"] is None else r["fit_failures"],
                   r["finding_ms_per_event"], r["ms_per_event"]] for r in chain["rows"]])
    md += [f"Options 0, 4 and 5 give the same tracks: "
           f"**{'yes' if chain['same_tracks'] else 'NO'}**; {chain['reconstructable']} "
           f"reconstructable particles, {chain['displaced']} of them produced at r > 10 mm; "
           f"{chain['failed']} events failed.", ""]
    if chain["errors"]:
        md += [*(f"- {e}" for e in chain["errors"]), ""]
    if plot:
        md += [f"![efficiency vs production radius]({plot})", "",
               "Efficiency against the particle's production radius: our finder (the same "
               "tracks through any option) and the CKF; bars are binomial errors.", ""]
    md += ["CKF settings, as ACTS sets them for the generic detector (acts-project/acts):", ""]
    md += _table(["what", "value", "source"],
                 [[c.replace("|", "\\|") for c in r] for r in SOURCES])  # |eta| in a cell
    return md


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
        opt = MODEL_OPTION[r["model"]]
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


def _simulation_section(summary: Mapping[str, Any], plots: Mapping[str, str]) -> list[str]:
    sim = summary.get("simulation")
    if not sim:
        return []
    real, other = sim["reference"], sim["other"]
    md = ["## Simulated against real events", "",
          f"The timed events ({real}) against as many HNL events simulated with ACTS "
          f"(`exatrkx simulate --source hnl`, {other}): *KS D* is the Kolmogorov-Smirnov "
          "distance of the two distributions (largest gap of the cumulative distributions), "
          "*W* the Wasserstein distance in units of the real distribution's spread.", ""]
    rows = []
    for key, (label, unit) in QUANTITIES.items():
        q = sim["quantities"][key]
        rows.append([f"{label} [{unit}]" if unit else label, q["mean"][real], q["mean"][other],
                     q["median"][real], q["median"][other], _f(q["ks"], 3),
                     _f(q["wasserstein_sd"], 3)])
    md += _table(["quantity", "real mean", "simulated mean", "real median",
                  "simulated median", "KS D", "W / sd"], rows)
    edges = sim["edges_per_hit"]
    md += ["Edges per hit after each stage, option 0 with the weights timed here:", ""]
    md += _table(["stage", "real", "simulated", "real / simulated - 1"],
                 [[k, edges["real"][k], edges["simulated"][k],
                   f"{edges['real'][k] / edges['simulated'][k] - 1:+.1%}"
                   if edges["simulated"][k] else "n/a"] for k in edges["real"]])
    return [*md, f"![simulated against real]({plots['simulation']})", ""]


def _resource_section(summary: Mapping[str, Any]) -> list[str]:
    res = summary["resources"]
    md = ["## Resource estimate", ""]
    basis = res["basis"]
    if basis is None:
        return [*md, "No whole-event remote option was timed; no estimate.", ""]
    md += [f"Basis: {basis['label']}, events of {basis['mean_hits']:.0f} hits on average: "
           f"{basis['throughput_eps']:.3g} events/s per server "
           f"on this {basis['machine_cores']}-core machine, "
           f"{_f(basis['server_cpu_ms'], 1)} ms server CPU and "
           f"{_f(basis['client_cpu_ms'], 1)} ms client CPU per event; in-process option 0: "
           f"{basis['local_throughput_eps']:.3g} events/s, "
           f"{_f(basis['local_cpu_ms'], 1)} ms CPU per event. Planned utilisation "
           f"{res['utilisation']:.0%}.", ""]
    md += _table(["event rate", "servers like this one", "server cores", "client cores",
                  "cores if in process (S0)", "network Mbit/s"],
                 [[f"{n['rate_hz']:g} Hz", n["servers"], n["server_cores"],
                   n["client_cores"], n["local_cores"], n["network_mbit_s"]]
                  for n in res["table"]])
    md += ["Assumptions:", "", *(f"- {a}" for a in res["assumptions"]), ""]
    return md
