"""What offloading costs: service options 0-5 against Triton's floors, per transport.

One run, one embedded server (the repository's default setting), warm. For every transport
(gRPC, HTTP, gRPC with system shared memory) and every event, each option runs once,
interleaved with the floor models on the same features (``identity``: one hop that never
reads its input; ``identity_ensemble5``: five of them; ``touch``: one hop that reads every
input element and writes a labels-sized output; ``touch_ensemble5``: five steps that read
everything and write outputs of the real stages' sizes), so that all of them see the same
machine load. Prints mean/median ms per event and checks, on paired per-event differences
(median with a bootstrap 95 % interval):

- option 5 - option 0   <= 1.25 x touch floor, one hop
- option 4 - option 0   <= 1.25 x touch floor, five steps
- option 1 embed - option 0 embed (the remote embed call's overhead) <= 1.25 x touch hop
- option 4 - option 3   <= 0

Each event runs ``--repeats`` times per option (interleaved); differences pair the repeats
of one event (same moment), then the median over repeats, then over events.

    .venv/bin/python benchmarks/bench_service.py [--events DIR] [--n 100] [--weights DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from exatrkx.contract import ALL_OPTIONS, FLOOR_MODELS, touch_sizes
from exatrkx.core.allocator import tune_allocator
from exatrkx.io import iter_events
from exatrkx.io.shared import hnl_events_dir
from exatrkx.serve import ServerConfig, TritonServer, write_repository
from exatrkx.serve.repository import DEFAULT_BATCHING, DEFAULT_INSTANCES
from exatrkx.service.remote import floor_times
from exatrkx.service.runner import Runner, make_runner
from exatrkx.service.stats import stats_delta
from exatrkx.service.transport import ClientConfig, Transport
from exatrkx.study.measure import weights_or_random
from exatrkx.util.paired import Interval, median_interval, paired_differences, ratio_interval
from exatrkx.util.procfs import group_cpu_s

TRANSPORTS = {"grpc": ("grpc", False), "http": ("http", False), "shm": ("grpc", True)}
TOLERANCE = 1.25


@dataclass
class Series:
    """Per-event times (ms) of one option or floor model on one transport: per event, the
    times of its repeats."""

    total: list[list[float]] = field(default_factory=list)
    embed: list[list[float]] = field(default_factory=list)
    cpu_ms: float = 0.0
    calls: int = 0

    @property
    def flat(self) -> list[float]:
        return [t for ts in self.total for t in ts]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.flat)

    @property
    def median(self) -> float:
        return median_interval([statistics.median(t) for t in self.total]).median


def cpu_now(pgid: int) -> float:
    """Client process plus server group CPU seconds."""
    return time.process_time() + group_cpu_s(pgid)


def run_transport(name: str, server: TritonServer, weights: Path | None,
                  events: list[np.ndarray], warmup: int, repeats: int) -> dict:
    protocol, shm = TRANSPORTS[name]
    pgid = server.pid or -1
    url = server.grpc_url if protocol == "grpc" else server.http_url
    key = server.api_key  # HTTP inference needs it
    runners: dict[int, Runner] = {opt: make_runner(opt, url, protocol, shm, weights_dir=weights,
                                                   api_key=key)
                                  for opt in ALL_OPTIONS}
    floor = Transport(ClientConfig(url=url, protocol=protocol, shared_memory=shm, api_key=key))
    series = {key: Series() for key in [*(str(int(o)) for o in ALL_OPTIONS), *FLOOR_MODELS]}
    labels_equal = True
    width = int(runners[0].config.embed.out_dim) if runners[0].config is not None else 8
    try:
        sizes = []
        for x in events:
            res = runners[0].run(x)
            sizes.append(touch_sizes(width, res.edges.get("build", 0),
                                     res.edges.get("filter", 0)))
        for x, sz in zip(events[:warmup], sizes, strict=False):
            for runner in runners.values():
                runner.run(x)
            floor_times(floor, x, sz)
        before = runners[1].server_statistics()
        for i, (x, sz) in enumerate(zip(events, sizes, strict=True)):
            ref = None
            times: dict[str, list[float]] = {key: [] for key in series}
            embeds: dict[str, list[float]] = {key: [] for key in series}
            for rep in range(repeats):
                order = list(runners.items())
                shift = (i + rep) % len(order)
                for opt, runner in order[shift:] + order[:shift]:
                    c0 = cpu_now(pgid)
                    result = runner.run(x)
                    labels, timing = result.labels, result.timing
                    series[str(opt)].cpu_ms += (cpu_now(pgid) - c0) * 1e3
                    series[str(opt)].calls += 1
                    times[str(opt)].append(timing.total_ms)
                    embeds[str(opt)].append(timing.stages_ms.get("embed", float("nan")))
                    if ref is None:
                        ref = labels
                    labels_equal &= bool(np.array_equal(labels, ref))
                for key, ms in floor_times(floor, x, sz).items():
                    times[key].append(ms)
            for key, s in series.items():
                s.total.append(times[key])
                s.embed.append(embeds[key])
        after = runners[1].server_statistics()
    finally:
        floor.close()
        for runner in runners.values():
            runner.close()
    server_stats = {m: s.to_dict() for m, s in stats_delta(before, after).items()}
    return {"series": series, "labels_equal": labels_equal, "server": server_stats}


def paired(a: Series, b: Series, attr: str = "total") -> list[float]:
    """Per event: the median over repeats of a - b (repeats paired)."""
    return paired_differences(getattr(a, attr), getattr(b, attr))


def checks(series: dict[str, Series]) -> dict[str, tuple[Interval, float, bool]]:
    """name -> (paired median [interval] in ms, or ratio to the floor, limit, ok)."""
    touch_hop = [statistics.median(t) for t in series["touch_hop"].total]
    touch_ens = [statistics.median(t) for t in series["touch_ensemble5"].total]
    d5 = paired(series["5"], series["0"])
    d4 = paired(series["4"], series["0"])
    de = paired(series["1"], series["0"], "embed")
    d43 = paired(series["4"], series["3"])
    out = {}
    for name, diffs, floor in (("option5 - option0 / touch hop", d5, touch_hop),
                               ("option4 - option0 / touch ensemble5", d4, touch_ens),
                               ("option1 embed overhead / touch hop", de, touch_hop)):
        ratio = ratio_interval(diffs, floor)
        out[name] = (ratio, TOLERANCE, ratio.median <= TOLERANCE)
    iv = median_interval(d43)
    out["option4 - option3 (ms)"] = (iv, 0.0, iv.median <= 0.0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=None, help="events (default: shared HNL)")
    parser.add_argument("--n", type=int, default=100, help="events to time")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up events per transport")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per event and option; the event's figure is their median")
    parser.add_argument("--weights", type=Path, default=None, help="weights folder")
    parser.add_argument("--transports", default="grpc,http,shm")
    parser.add_argument("--instances", type=int, default=DEFAULT_INSTANCES)
    parser.add_argument("--batching", action=argparse.BooleanOptionalAction,
                        default=DEFAULT_BATCHING,
                        help="dynamic batching on the server (default: on, the repository's "
                             "default)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads, client and every server model")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)

    source = args.events or hnl_events_dir()
    if source is None:
        print("no events: pass --events (the shared HNL events are absent)", file=sys.stderr)
        return 2
    events = [ev.features for _, ev in zip(range(args.n), iter_events(source), strict=False)]
    torch.set_num_threads(args.threads)
    tune_allocator()  # as the CLI and the served models do
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        weights = weights_or_random(args.weights, Path(tmp))
        repo = write_repository(Path(tmp) / "models", weights, instances=args.instances,
                                torch_threads=args.threads, libtorch_variant=False,
                                dynamic_batching=args.batching)
        # a loopback server of this run only; its control APIs need no key (HTTP inference
        # does: the runners send it)
        cfg = ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=300,
                           restricted=())
        with TritonServer(repo, cfg) as server:
            for name in args.transports.split(","):
                t0 = time.perf_counter()
                results[name] = run_transport(name, server, weights, events, args.warmup,
                                              args.repeats)
                print(f"[{name}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr)

    hits = [len(x) for x in events]
    print(f"\n{len(events)} events, {np.mean(hits):.0f} hits on average; ms per event, "
          f"mean / median; torch threads {args.threads}, instances {args.instances}; "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    names = list(results)
    rows = [*(str(int(o)) for o in ALL_OPTIONS), *FLOOR_MODELS]
    labels = {"hop": "floor: identity (1 hop)", "ensemble5": "floor: identity x5 ensemble",
              "touch_hop": "floor: touch (1 hop)", "touch_ensemble5": "floor: touch x5 ensemble"}
    print(f"{'':30}" + "".join(f"{n:>20}" for n in names) + "   cpu ms/event (client+server)")
    for row in rows:
        title = labels.get(row, f"option {row}")
        cells = "".join(f"{results[n]['series'][row].mean:>10.2f} /"
                        f"{results[n]['series'][row].median:>7.2f} " for n in names)
        cpu = "".join(f"{results[n]['series'][row].cpu_ms / results[n]['series'][row].calls:>8.1f}"
                      for n in names if results[n]["series"][row].calls)
        print(f"{title:30}{cells}   {cpu}")
    print("\npaired overhead over option 0 (ms, median [95% CI]):")
    for opt in (str(int(o)) for o in ALL_OPTIONS[1:]):
        print(f"  option {opt}: " + "   ".join(
            f"{n} {median_interval(paired(results[n]['series'][opt], results[n]['series']['0']))}"
            for n in names))
    print()
    ok_all = True
    summary: dict[str, dict] = {}
    for n in names:
        series = results[n]["series"]
        summary[n] = {"options": {k: {"mean_ms": s.mean, "median_ms": s.median,
                                      "cpu_ms": s.cpu_ms / s.calls if s.calls else None}
                                  for k, s in series.items()},
                      "labels_equal": results[n]["labels_equal"],
                      "server": results[n]["server"], "checks": {}}
        print(f"[{n}] identical labels across options: {results[n]['labels_equal']}")
        for check, (value, limit, ok) in checks(series).items():
            ok_all &= ok
            summary[n]["checks"][check] = {**value.to_dict(), "limit": limit, "ok": ok}
            print(f"  {check:40} {value!s:>24}  (limit {limit:5.2f})  "
                  f"{'ok' if ok else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
