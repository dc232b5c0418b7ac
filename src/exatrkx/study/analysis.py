"""The study's analysis: the JSON summary of a :class:`StudyResult` (options, overheads,
floors, concurrency, resources)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from exatrkx.contract import (
    FLOOR_MODELS,
    OPTIONS,
    WHOLE_EVENT_OPTIONS,
    Option,
)
from exatrkx.service.stats import ModelStats, stats_delta
from exatrkx.study.chain import chain_summary
from exatrkx.study.network import network_rows
from exatrkx.study.resources import ASSUMPTIONS, DEFAULT_RATES, UTILISATION, Basis, estimate
from exatrkx.study.results import FLOOR_ROWS, OptionRun, ScanPoint, StudyResult
from exatrkx.study.scaleout import servers_rows
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
OPTION_TEXT: dict[str, str] = {
    **{str(int(o)): spec.description for o, spec in OPTIONS.items()},
    FLOOR_ROWS["hop"]: "floor: identity, 1 hop",
    FLOOR_ROWS["ensemble5"]: "floor: identity x5 ensemble",
}
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
    """One throughput point as a table row (the timed-run fields of :class:`TimedRun`)."""
    remote = OPTIONS[p.option].remote
    return {"option": int(p.option), "transport": p.transport, "concurrency": p.concurrency,
            "instances": p.instances, "dynamic_batching": p.batching,
            **{k: v for k, v in p.timed.summary().items() if k != "failures"},
            "server_cpu_ms_per_event": (p.cpu_server_s * 1e3 / max(p.events, 1) if remote
                                        else 0.0),
            "client_cpu_ms_per_event": p.cpu_client_s * 1e3 / max(p.events, 1),
            "identical_labels": p.mismatched == 0,
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


def summarize(result: StudyResult) -> dict[str, Any]:
    """The JSON summary (``options``, ``identical_labels``, ``floor``, ``concurrency``, ...)."""
    cfg = result.config
    head = cfg.protocols[0]
    main = result.main.get(head, {})
    options: dict[str, Any] = {}
    ref = main[REFERENCE_ROW].timed.latency_mean_ms if REFERENCE_ROW in main else math.nan
    hop = main[FLOOR_ROWS["hop"]].timed.latency_mean_ms if main else math.nan
    ens5 = main[FLOOR_ROWS["ensemble5"]].timed.latency_mean_ms if main else math.nan
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
            "floor_equivalent_ms": _floor_equivalent(option, requests, hop, ens5),
            "requests_per_event": requests,
            "cpu_ms_per_event": {"client": run.cpu_client_s * 1e3 / max(run.events, 1),
                                 "server": run.cpu_server_s * 1e3 / max(run.events, 1)},
            "identical_labels": not mismatched,
            "mismatched_events": len(mismatched),
            "transports": {t: latency(result.main[t][opt].timed) for t in result.main},
            "description": OPTION_TEXT[opt],
        }
    floor = {"hop_ms": hop, "ensemble5_ms": ens5,
             "transports": {t: {"hop_ms": r[FLOOR_ROWS["hop"]].timed.latency_mean_ms,
                                "ensemble5_ms": r[FLOOR_ROWS["ensemble5"]].timed.latency_mean_ms}
                            for t, r in result.main.items()}}
    concurrency: dict[str, dict[str, Any]] = {}
    for p in result.scan:
        row = scan_row(p)
        row.pop("server")
        concurrency.setdefault(str(int(p.option)), {})[str(p.concurrency)] = row
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
        "server_scan": [scan_row(p) for p in result.server_scan],
        "server_scan_identical_labels": all(p.mismatched == 0 for p in result.server_scan),
        "perf_analyzer": {"available": result.perf.available, "reason": result.perf.reason,
                          "rows": result.perf.rows, "errors": result.perf.errors},
        "resources": resources,
        "transport": head,
        "transports": list(result.main),
        "events": len(result.event_hits),
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
