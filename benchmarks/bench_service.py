"""What offloading costs: service options 0-5 against Triton's own floor, per transport.

One run, one embedded server, warm. For every transport (gRPC, HTTP, gRPC with system shared
memory) and every event, each option runs once, interleaved with the floor models
(``identity``: one hop; ``identity_ensemble5``: five hops) on the same features, so that all
of them see the same machine load. Prints mean/median ms per event and checks:

- option 5 - option 0   <= 1.25 x one-hop floor
- option 4 - option 0   <= 1.25 x five-step floor
- option 1 embed - option 0 embed (the remote embed call's overhead) <= 1.25 x one-hop floor
- option 4 <= option 3

Each event runs ``--repeats`` times per option (interleaved); its figure is the median of
those. Differences are paired per event (same event, same moment); checks use their mean.

    .venv/bin/python benchmarks/bench_service.py [--events DIR] [--n 100] [--weights DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from exatrkx.contract import ALL_OPTIONS, FLOOR_MODELS
from exatrkx.core.allocator import tune_allocator
from exatrkx.io import iter_events
from exatrkx.io.shared import hnl_events_dir
from exatrkx.serve import ServerConfig, TritonServer, write_repository
from exatrkx.service.remote import floor_times
from exatrkx.service.runner import Runner, make_runner
from exatrkx.service.stats import stats_delta
from exatrkx.service.transport import ClientConfig, Transport
from exatrkx.study.measure import weights_or_random
from exatrkx.util.procfs import group_cpu_s

TRANSPORTS = {"grpc": ("grpc", False), "http": ("http", False), "shm": ("grpc", True)}
TOLERANCE = 1.25


@dataclass
class Series:
    """Per-event times (ms) of one option or floor model on one transport."""

    total: list[float] = field(default_factory=list)
    embed: list[float] = field(default_factory=list)
    cpu_ms: float = 0.0
    calls: int = 0

    @property
    def mean(self) -> float:
        return statistics.fmean(self.total)

    @property
    def median(self) -> float:
        return statistics.median(self.total)


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
    try:
        for x in events[:warmup]:
            for runner in runners.values():
                runner.run(x)
            floor_times(floor, x)
        before = runners[1].server_statistics()
        for x in events:
            ref = None
            times: dict[str, list[float]] = {key: [] for key in series}
            embeds: dict[str, list[float]] = {key: [] for key in series}
            for _ in range(repeats):
                for opt, runner in runners.items():
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
                for key, ms in floor_times(floor, x).items():
                    times[key].append(ms)
            for key, s in series.items():  # the per-event figure: median of the repeats
                s.total.append(statistics.median(times[key]))
                if embeds[key]:
                    s.embed.append(statistics.median(embeds[key]))
        after = runners[1].server_statistics()
    finally:
        floor.close()
        for runner in runners.values():
            runner.close()
    server_stats = {m: s.to_dict() for m, s in stats_delta(before, after).items()}
    return {"series": series, "labels_equal": labels_equal, "server": server_stats}


def paired(a: Series, b: Series, attr: str = "total") -> float:
    """Mean per-event difference a - b."""
    return statistics.fmean(x - y for x, y in zip(getattr(a, attr), getattr(b, attr),
                                                  strict=True))


def checks(series: dict[str, Series]) -> dict[str, tuple[float, float, bool]]:
    """name -> (measured ms, limit ms, ok)."""
    hop, ens5 = series["hop"].mean, series["ensemble5"].mean
    d5 = paired(series["5"], series["0"])
    d4 = paired(series["4"], series["0"])
    de = paired(series["1"], series["0"], "embed")
    d43 = paired(series["4"], series["3"])
    return {
        "option5 - option0 <= 1.25 hop": (d5, TOLERANCE * hop, d5 <= TOLERANCE * hop),
        "option4 - option0 <= 1.25 ens5": (d4, TOLERANCE * ens5, d4 <= TOLERANCE * ens5),
        "option1 embed overhead <= 1.25 hop": (de, TOLERANCE * hop, de <= TOLERANCE * hop),
        "option4 - option3 <= 0": (d43, 0.0, d43 <= 0.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=None, help="events (default: shared HNL)")
    parser.add_argument("--n", type=int, default=100, help="events to time")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up events per transport")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per event and option; the event's figure is their median")
    parser.add_argument("--weights", type=Path, default=None, help="weights folder")
    parser.add_argument("--transports", default="grpc,http,shm")
    parser.add_argument("--instances", type=int, default=1)
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
                                torch_threads=args.threads, libtorch_variant=False)
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
          f"mean / median; torch threads {args.threads}, instances {args.instances}\n")
    names = list(results)
    rows = [*(str(int(o)) for o in ALL_OPTIONS), *FLOOR_MODELS]
    labels = {"hop": "floor: identity (1 hop)", "ensemble5": "floor: identity x5 ensemble"}
    print(f"{'':30}" + "".join(f"{n:>20}" for n in names) + "   cpu ms/event (client+server)")
    for row in rows:
        title = labels.get(row, f"option {row}")
        cells = "".join(f"{results[n]['series'][row].mean:>10.2f} /"
                        f"{results[n]['series'][row].median:>7.2f} " for n in names)
        cpu = "".join(f"{results[n]['series'][row].cpu_ms / results[n]['series'][row].calls:>8.1f}"
                      for n in names if results[n]["series"][row].calls)
        print(f"{title:30}{cells}   {cpu}")
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
            summary[n]["checks"][check] = {"ms": value, "limit_ms": limit, "ok": ok}
            print(f"  {check:40} {value:8.2f} ms  (limit {limit:6.2f})  "
                  f"{'ok' if ok else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
