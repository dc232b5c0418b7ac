"""The study's analysis: the JSON summary of a :class:`StudyResult` (options, overheads,
paired overheads with intervals, floors, the throughput scan and the best served setting,
the targets, resources)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from exatrkx.contract import (
    FLOOR_MODELS,
    OPTIONS,
    TOUCH_FLOOR_OF,
    WHOLE_EVENT_OPTIONS,
    Option,
)
from exatrkx.service.stats import ModelStats, stats_delta
from exatrkx.study.chain import chain_summary
from exatrkx.study.config import BEST_AT_IN_FLIGHT
from exatrkx.study.network import network_rows
from exatrkx.study.resources import ASSUMPTIONS, DEFAULT_RATES, UTILISATION, Basis, estimate
from exatrkx.study.results import FLOOR_ROWS, OptionRun, ScanPoint, StudyResult
from exatrkx.study.scaleout import servers_rows
from exatrkx.util.paired import (
    Interval,
    median_interval,
    paired_differences,
    per_item_median,
    ratio_interval,
)
from exatrkx.util.timing import TimedRun, mean

#: Models an option (or floor row) sends its requests to, by row key.
TOP_MODELS: dict[str, tuple[str, ...]] = {
    **{str(int(o)): spec.models for o, spec in OPTIONS.items()},
    **{FLOOR_ROWS[key]: (model,) for key, model in FLOOR_MODELS.items()},
}
#: Models whose statistics split a row's server time by stage.
SPLIT_MODELS: dict[str, tuple[str, ...]] = {
    **TOP_MODELS, **{str(int(o)): spec.stage_models for o, spec in OPTIONS.items()}}
#: Overhead components, in plotting order.
OVERHEAD = ("client_compute", "transfer", "server_queue", "server_data", "server_compute")
OVERHEAD_TEXT = {
    "client_compute": "client compute (local stages, glue)",
    "transfer": "transfer (serialise, send, receive)",
    "server_queue": "server queue",
    "server_data": "server data in/out (+ ensemble hand-offs)",
    "server_compute": "server compute (infer)",
}
#: Short description of each row key.
FLOOR_TEXT: dict[str, str] = {
    "hop": "floor: identity, 1 hop",
    "ensemble5": "floor: identity x5 ensemble",
    "touch_hop": "floor: touch, 1 hop",
    "touch_ensemble5": "floor: touch x5 ensemble",
}
OPTION_TEXT: dict[str, str] = {
    **{str(int(o)): spec.description for o, spec in OPTIONS.items()},
    **{FLOOR_ROWS[key]: text for key, text in FLOOR_TEXT.items()},
}
#: Allowed ratio of a whole-event option's paired overhead to its touch floor.
TOUCH_TOLERANCE = 1.25
#: Served throughput at :data:`BEST_AT_IN_FLIGHT` in flight, as a fraction of option 0's.
THROUGHPUT_TARGET = 0.9
#: The whole-event models and the option (row key) that sends to each.
WHOLE_EVENT_MODELS = tuple(str(OPTIONS[o].whole_event_model) for o in WHOLE_EVENT_OPTIONS)
MODEL_OPTION = {str(OPTIONS[o].whole_event_model): str(int(o)) for o in WHOLE_EVENT_OPTIONS}
#: The in-process row (the labels' and the offload's reference).
REFERENCE_ROW = str(int(Option.IN_PROCESS))


def latency(run: TimedRun) -> dict[str, float]:
    """``ms_per_event`` (the mean) and the percentiles of a run."""
    return {"ms_per_event": run.latency_mean_ms, "latency_p50_ms": run.latency_ms(50),
            "latency_p95_ms": run.latency_ms(95)}


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
    """Where a row's ms per event go (see :data:`OVERHEAD_TEXT`); they add up to the mean.

    client compute = total - time in requests; transfer = time in requests - Triton's
    request time; Triton's request time = queue + compute infer + data (the rest: compute
    input/output, copies into and out of the backend, ensemble hand-offs).
    """
    total = run.timed.latency_mean_ms
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


def scan_row(p: ScanPoint) -> dict[str, Any]:
    """One throughput point as a table row (the timed-run fields of :class:`TimedRun`;
    ``throughput_eps`` is the median over the passes)."""
    remote = OPTIONS[p.option].remote
    return {"option": int(p.option), "transport": p.transport, "concurrency": p.concurrency,
            "instances": p.instances, "dynamic_batching": p.batching,
            **{k: v for k, v in p.timed.summary().items() if k != "failures"},
            "throughput_eps": p.throughput_eps,
            "server_cpu_ms_per_event": (p.cpu_server_s * 1e3 / max(p.events, 1) if remote
                                        else 0.0),
            "client_cpu_ms_per_event": p.cpu_client_s * 1e3 / max(p.events, 1),
            "identical_labels": p.mismatched == 0,
            "throughput_eps_passes": list(p.passes_eps),
            "server": {m: s.to_dict() for m, s in stats_delta({}, p.stats).items()}}


def resource_basis(result: StudyResult) -> Basis | None:
    """The best whole-event remote point and the best option-0 point."""
    points = [p for p in [*result.scan, *result.server_scan] if p.option in WHOLE_EVENT_OPTIONS]
    local = [p for p in result.scan if p.option == Option.IN_PROCESS]
    if not points:
        return None
    best = max(points, key=lambda p: p.throughput_eps)
    best_local = max(local, key=lambda p: p.throughput_eps) if local else None
    return Basis(
        label=(f"option {int(best.option)}, concurrency {best.concurrency}, "
               f"{best.instances} instance(s), dynamic batching "
               f"{'on' if best.batching else 'off'}"),
        throughput_eps=best.throughput_eps,
        server_cpu_ms=best.cpu_server_s * 1e3 / max(best.events, 1),
        client_cpu_ms=best.cpu_client_s * 1e3 / max(best.events, 1),
        local_cpu_ms=(best_local.cpu_client_s * 1e3 / max(best_local.events, 1)
                      if best_local else math.nan),
        local_throughput_eps=best_local.throughput_eps if best_local else math.nan,
        machine_cores=result.machine_cores, mean_hits=mean(result.event_hits))


def _floor_equivalent(opt: Option, requests: float, hop: float, ens5: float) -> float:
    """What Triton's floor charges for an option's round trips: nothing in process, the
    5-step identity ensemble for the ensemble, one identity hop per request otherwise."""
    spec = OPTIONS[opt]
    if not spec.remote:
        return 0.0
    if spec.whole_event_model is not None and len(spec.stage_models) > 1:
        return ens5
    return requests * hop


def _passes(run: OptionRun | None, events: int) -> list[list[float]]:
    return run.repeats(events) if run is not None else [[] for _ in range(events)]


def paired_overheads(main: Mapping[str, OptionRun], events: int
                     ) -> dict[str, list[float]]:
    """Per option, per event: the median over its passes of (option - option 0), each pass
    paired (they ran next to each other)."""
    ref = _passes(main.get(REFERENCE_ROW), events)
    return {key: paired_differences(_passes(run, events), ref)
            for key, run in main.items() if not key.startswith("floor")}


def floor_medians(main: Mapping[str, OptionRun], events: int) -> dict[str, list[float]]:
    """Per floor key, per event: the median of its passes."""
    return {key: per_item_median(_passes(main.get(row), events))
            for key, row in FLOOR_ROWS.items()}


def best_served(points: Sequence[ScanPoint]) -> ScanPoint | None:
    """The served point with the highest throughput at :data:`BEST_AT_IN_FLIGHT` events in
    flight (at the most events in flight scanned when that level was not)."""
    served = [p for p in points if p.option in WHOLE_EVENT_OPTIONS]
    if not served:
        return None
    levels = {p.concurrency for p in served}
    level = BEST_AT_IN_FLIGHT if BEST_AT_IN_FLIGHT in levels else max(levels)
    return max((p for p in served if p.concurrency == level), key=lambda p: p.throughput_eps)


def _in_process_beside(points: Sequence[ScanPoint], best: ScanPoint) -> ScanPoint | None:
    """Option 0 at the same level, measured on the same server setting's scan (beside it)."""
    for p in points:
        if (p.option == Option.IN_PROCESS and p.concurrency == best.concurrency
                and (p.instances, p.batching) == (best.instances, best.batching)):
            return p
    return None


def _target(name: str, value: Interval, limit: float, higher_is_better: bool = False,
            unit: str = "") -> dict[str, Any]:
    ok = value.median >= limit if higher_is_better else value.median <= limit
    sure = value.lo >= limit if higher_is_better else value.hi <= limit
    sure_miss = value.hi < limit if higher_is_better else value.lo > limit
    return {"name": name, **value.to_dict(), "limit": limit, "unit": unit,
            "met": bool(ok) if math.isfinite(value.median) else None,
            "conclusive": bool(sure or sure_miss)}


def targets(result: StudyResult, paired: Mapping[str, list[float]],
            floors: Mapping[str, list[float]]) -> list[dict[str, Any]]:
    """The issue's targets, each with its interval: whether the median meets it, and whether
    the whole interval lies on one side of the limit (``conclusive``)."""
    out = []
    best = best_served(result.server_scan)
    local = _in_process_beside(result.server_scan, best) if best is not None else None
    if best is not None and local is not None:
        ratios = [b / a for a, b in zip(local.passes_eps, best.passes_eps, strict=False)
                  if a > 0]
        value = Interval(best.throughput_eps / local.throughput_eps if local.throughput_eps
                         else math.nan, min(ratios, default=math.nan),
                         max(ratios, default=math.nan))
        out.append(_target(f"best served throughput at {best.concurrency} in flight / "
                           f"in-process (range over passes)", value, THROUGHPUT_TARGET,
                           higher_is_better=True, unit="x"))
    for model, floor_key in TOUCH_FLOOR_OF.items():
        opt = next((k for k, spec in OPTIONS.items() if spec.whole_event_model == model), None)
        key = str(int(opt)) if opt is not None else ""
        if key in paired and floors.get(floor_key):
            value = ratio_interval(paired[key], floors[floor_key])
            out.append(_target(f"S{key} paired overhead / {FLOOR_TEXT[floor_key]}", value,
                               TOUCH_TOLERANCE, unit="x"))
    four, three = str(int(Option.ENSEMBLE)), str(int(Option.EVERY_STAGE_REMOTE))
    if four in paired and three in paired:
        diff = [a - b for a, b in zip(paired[four], paired[three], strict=True)]
        out.append(_target(f"S{four} - S{three}, paired", median_interval(diff), 0.0,
                           unit="ms"))
    return out


def summarize(result: StudyResult) -> dict[str, Any]:
    """The JSON summary (``options``, ``identical_labels``, ``floor``, ``concurrency``,
    ``best_served``, ``targets``, ...)."""
    cfg = result.config
    head = cfg.protocols[0]
    main = result.main.get(head, {})
    n_events = len(result.event_hits)
    options: dict[str, Any] = {}
    ref = main[REFERENCE_ROW].timed.latency_mean_ms if REFERENCE_ROW in main else math.nan
    paired = paired_overheads(main, n_events)
    floors = floor_medians(main, n_events)
    floor_ms = {key: median_interval(values).median for key, values in floors.items()}
    hop, ens5 = floor_ms["hop"], floor_ms["ensemble5"]
    for option in cfg.timed_options:
        opt = str(int(option))
        run = main[opt]
        mismatched = set().union(*(result.main[t][opt].mismatched for t in result.main))
        requests = sum(s.requests for m, s in run.server().items()
                       if m in TOP_MODELS[opt]) / max(run.events, 1)
        options[opt] = {
            **latency(run.timed),
            "stages_ms": {k: v / max(run.events, 1) for k, v in run.stage_sums.items()},
            "server_ms": server_split(run, SPLIT_MODELS[opt]),
            "overhead_ms": overhead(opt, run),
            "offload_ms": run.timed.latency_mean_ms - ref,
            "paired_overhead_ms": median_interval(paired[opt]).to_dict(),
            "floor_equivalent_ms": _floor_equivalent(option, requests, hop, ens5),
            "requests_per_event": requests,
            "cpu_ms_per_event": {"client": run.cpu_client_s * 1e3 / max(run.events, 1),
                                 "server": run.cpu_server_s * 1e3 / max(run.events, 1)},
            "identical_labels": not mismatched,
            "mismatched_events": len(mismatched),
            "transports": {t: {**latency(result.main[t][opt].timed),
                               "paired_overhead_ms": median_interval(paired_overheads(
                                   result.main[t], n_events)[opt]).to_dict()}
                           for t in result.main},
            "description": OPTION_TEXT[opt],
        }
    floor: dict[str, Any] = {f"{key}_ms": value for key, value in floor_ms.items()}
    floor["intervals"] = {f"{key}_ms": median_interval(values).to_dict()
                          for key, values in floors.items()}
    floor["transports"] = {t: {f"{key}_ms": median_interval(values).median
                               for key, values in floor_medians(r, n_events).items()}
                           for t, r in result.main.items()}
    concurrency: dict[str, dict[str, Any]] = {}
    for p in result.scan:
        row = scan_row(p)
        row.pop("server")
        concurrency.setdefault(str(int(p.option)), {})[str(p.concurrency)] = row
    best = best_served(result.server_scan)
    basis = resource_basis(result)
    resources: dict[str, Any] = {"basis": None, "table": [], "assumptions": list(ASSUMPTIONS),
                                 "utilisation": UTILISATION}
    if basis is not None:
        resources["basis"] = dict(vars(basis))
        resources["table"] = [n.to_dict() for n in estimate(basis, DEFAULT_RATES, UTILISATION)]
    scans_ok = all(p.mismatched == 0 for p in result.scan)
    return {
        "options": options,
        "identical_labels": all(o["identical_labels"] for o in options.values()) and scans_ok,
        "floor": floor,
        "concurrency": concurrency,
        "best_served": None if best is None else {
            "option": int(best.option), "instances": best.instances, "batching": best.batching,
            "throughput_eps_8": best.throughput_eps},
        "targets": targets(result, paired, floors),
        "main_server": {"instances": result.main_setting[0],
                        "batching": result.main_setting[1]},
        "server_scan": [scan_row(p) for p in result.server_scan],
        "server_scan_identical_labels": all(p.mismatched == 0 for p in result.server_scan),
        "perf_analyzer": {"available": result.perf.available, "reason": result.perf.reason,
                          "rows": result.perf.rows, "errors": result.perf.errors},
        "resources": resources,
        "transport": head,
        "transports": list(result.main),
        "events": n_events,
        "mean_hits": mean(result.event_hits),
        "events_source": result.origin,
        "weights": result.weights,
        "server": result.server,
        "device": result.device,
        "batched_models": list(result.batched_models),
        "repeats": cfg.repeats,
        "torch_threads": cfg.threads,
        "machine_cores": result.machine_cores,
        "quick": cfg.quick,
        "notes": list(result.notes),
        "wall_s": result.wall_s,
        "network": network_rows(result.network),
        "servers": servers_rows(result.servers),
        "prometheus": result.prometheus,
        "chain": chain_summary(result.chain) if result.chain is not None else None,
        "simulation": result.simulation.summary if result.simulation is not None else None,
    }
