"""Load and soak test of the service: nothing lost, every answer exact, memory flat.

Starts a loopback server with the shipped weights (or uses ``--url``), computes the in-process
labels (option 0) of every event, then for each option sends every event ``--rounds`` times
from ``--clients`` concurrent connections and compares every answer. With ``--soak-s`` it
then keeps the server under that load for so many seconds (options alternating) while
sampling the resident memory of ``tritonserver`` and its backend stubs from ``/proc``.

    .venv/bin/python benchmarks/load_test.py --options 4,5 --clients 8 --rounds 3 \\
        --soak-s 180 --json load.json

At realistic sizes (events of ~200 000 hits: ttbar with 200 pileup interactions) the server
must accept them and the clients wait for them::

    .venv/bin/exatrkx simulate --source ttbar --pileup 200 --events 10 --seed 9 --out PU
    .venv/bin/python benchmarks/load_test.py --events PU --options 4,5 --clients 4 \\
        --rounds 2 --max-hits 400000 --timeout 1800 --json load-pu200.json

Exit code 0 when every option had zero errors and zero mismatches.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from exatrkx.core.allocator import tune_allocator
from exatrkx.io import iter_events
from exatrkx.io.shared import hnl_events_dir
from exatrkx.serve import ServerConfig, TritonServer, write_repository
from exatrkx.service.runner import make_runner
from exatrkx.study.loadtest import memory_trend, run_load
from exatrkx.util.procfs import group_rss


def soak(url: str, pgid: int, events: list[np.ndarray], reference: list[np.ndarray],
         options: list[int], clients: int, seconds: float, every_s: float,
         api_key: str | None) -> dict:
    """Load for ``seconds`` while sampling the server's memory every ``every_s``."""
    samples: list[tuple[float, dict[str, int]]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - t0, group_rss(pgid)))
            stop.wait(every_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    requests = errors = mismatches = 0
    try:
        while time.monotonic() - t0 < seconds:
            for option in options:
                result = run_load(url, events, reference, option, clients=clients, rounds=1,
                                  api_key=api_key)
                requests += result.requests
                errors += len(result.errors)
                mismatches += len(result.mismatches)
    finally:
        stop.set()
        sampler.join()
    samples.append((time.monotonic() - t0, group_rss(pgid)))
    out: dict = {"seconds": round(time.monotonic() - t0, 1), "requests": requests,
                 "errors": errors, "mismatches": mismatches, "samples": len(samples),
                 "processes": sorted({s.get("processes", 0) for _, s in samples})}
    times = [t for t, _ in samples]
    quarter = max(1, len(samples) // 4)
    for key in ("tritonserver", "triton_python_backend_stub"):
        mb = [s.get(key, 0) / 2**20 for _, s in samples]
        out[key] = {"first_mb": round(mb[0], 1), "last_mb": round(mb[-1], 1),
                    "first_quarter_mean_mb": round(float(np.mean(mb[:quarter])), 1),
                    "last_quarter_mean_mb": round(float(np.mean(mb[-quarter:])), 1),
                    "max_mb": round(max(mb), 1),
                    "slope_mb_per_min": round(memory_trend(times, mb) * 60, 3)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=None,
                        help="events (default: the shared HNL events)")
    parser.add_argument("--max-events", type=int, default=None,
                        help="use only the first N events")
    parser.add_argument("--options", default="4,5")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--instances", type=int, default=1, help="model instances")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--max-hits", type=int, default=None,
                        help="the server refuses events above this many hits (default: the "
                             "repository's default)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="client timeout of one request, s (default: the client's)")
    parser.add_argument("--url", default=None, help="gRPC HOST:PORT of a running server "
                                                    "(no soak memory figures then)")
    parser.add_argument("--soak-s", type=float, default=0.0)
    parser.add_argument("--sample-s", type=float, default=2.0)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tune_allocator()  # as the CLI and the served models do
    options = [int(o) for o in args.options.split(",")]
    events_dir = args.events or hnl_events_dir()
    if events_dir is None:
        parser.error("no events: pass --events (the shared HNL events are absent)")
    events = [ev.features for ev in iter_events(events_dir)][:args.max_events]
    load_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    t0 = time.perf_counter()
    with make_runner(0, weights_dir=args.weights) as local:
        reference = [r.labels for r in local.run_many(events)]
    report: dict = {"command": " ".join(sys.argv), "events_dir": str(events_dir),
                    "events": len(events), "hits_mean": float(np.mean([len(x) for x in events])),
                    "hits_max": int(max(len(x) for x in events)),
                    "clients": args.clients, "rounds": args.rounds, "instances": args.instances,
                    "reference_s": round(time.perf_counter() - t0, 1),
                    "load_average_start": load_start}
    with tempfile.TemporaryDirectory(prefix="exatrkx-load-") as tmp:
        server = None
        url = args.url
        if url is None:
            settings = {} if args.max_hits is None else {"max_hits": args.max_hits}
            repo = write_repository(Path(tmp) / "models", args.weights,
                                    instances=args.instances, libtorch_variant=False,
                                    **settings)
            server = TritonServer(repo, ServerConfig(grpc_port=0, http_port=0, metrics_port=0,
                                                     startup_timeout=300))
            server.start()
            url = server.grpc_url
        key = None if server is None else server.api_key
        try:
            report["rss_start"] = group_rss(server.pid) if server and server.pid else {}
            report["load"] = {}
            for option in options:
                result = run_load(url, events, reference, option, clients=args.clients,
                                  rounds=args.rounds, api_key=key, timeout_s=args.timeout)
                report["load"][str(option)] = result.summary()
                print(json.dumps(result.summary()), file=sys.stderr)
                for line in (result.errors + result.mismatches)[:5]:
                    print("  " + line, file=sys.stderr)
            if args.soak_s > 0 and server is not None and server.pid is not None:
                report["soak"] = soak(url, server.pid, events, reference, options,
                                      args.clients, args.soak_s, args.sample_s, key)
                print(json.dumps(report["soak"]), file=sys.stderr)
        finally:
            if server is not None:
                server.cleanup()
    report["load_average_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    ok = all(r["ok"] for r in report["load"].values())
    if "soak" in report:
        ok = ok and report["soak"]["errors"] == 0 and report["soak"]["mismatches"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
