"""Network latency: options 3, 4, 5 through the loopback delay proxy (:mod:`exatrkx.study.netem`)
at several one-way delays and bandwidth caps, against the model

    compute + round trips x 2 x delay + bytes / bandwidth

(compute: the option through the proxy at delay 0, no cap; round trips: option 3 five,
options 4 and 5 one). One embedded server, gRPC. Prints one row per point.

    .venv/bin/python benchmarks/bench_netem.py [--events PATH] [--n 20]
        [--delays 0,0.1,0.5,2.5] [--bandwidths 1,10] [--in-flight 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from exatrkx.core.allocator import tune_allocator
from exatrkx.serve import ServerConfig, TritonServer, write_repository
from exatrkx.service.runner import make_runner
from exatrkx.study.config import NETWORK_OPTIONS
from exatrkx.study.measure import load_events, weights_or_random
from exatrkx.study.network import network_rows, run_network_scan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=Path, default=None)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--delays", default="0,0.1,0.5,2.5")
    ap.add_argument("--bandwidths", default="1,10")
    ap.add_argument("--options", default="3,4,5")
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tune_allocator()  # as the CLI and the served models do
    delays = [float(d) for d in args.delays.split(",") if d]
    caps = [float(b) for b in args.bandwidths.split(",") if b]
    with tempfile.TemporaryDirectory(prefix="exatrkx-netem-") as tmp:
        scratch = Path(tmp)
        weights = weights_or_random(args.weights, scratch, lambda s: print(s, file=sys.stderr))
        events, origin = load_events(args.events, args.n)
        feats = [ev.features for ev in events]
        print(f"{len(feats)} events from {origin}, {np.mean([len(f) for f in feats]):.0f} hits "
              f"on average; {len(os.sched_getaffinity(0))} cores", flush=True)
        repo = write_repository(scratch / "models", weights, libtorch_variant=False)
        config = ServerConfig(grpc_port=0, http_port=0, metrics_port=0, exit_timeout=2)
        with TritonServer(repo, config) as server:
            with make_runner(0, weights_dir=weights) as local:
                reference = [local.run(x).labels for x in feats]
            direct = {}
            for option in NETWORK_OPTIONS:
                with make_runner(option, server.grpc_url, weights_dir=weights) as runner:
                    runner.run(feats[0])
                    direct[option] = float(np.mean([runner.run(x).timing.total_ms for x in feats]))
            print("direct (no proxy) mean ms: "
                  + ", ".join(f"S{o} {v:.2f}" for o, v in direct.items()), flush=True)
            points = run_network_scan(server.grpc_url, feats, reference, delays, caps,
                                      options=[int(o) for o in args.options.split(",")],
                                      in_flight=args.in_flight, weights=weights,
                                      progress=lambda s: print(s, file=sys.stderr, flush=True))
    rows = network_rows(points)
    print(f"{'opt':>3} {'delay':>6} {'cap':>5} {'mean ms':>9} {'model':>9} {'diff':>7} "
          f"{'ev/s':>7} {'kB up':>8} {'kB down':>8} labels")
    for r in rows:
        print(f"S{r['option']:<2} {r['delay_ms']:>6g} {r['bandwidth_gbps'] or '-':>5} "
              f"{r['latency_mean_ms']:>9.2f} {r['model_ms']:>9.2f} {r['model_error_ms']:>7.2f} "
              f"{r['throughput_eps']:>7.1f} {r['bytes_up_per_event'] / 1e3:>8.1f} "
              f"{r['bytes_down_per_event'] / 1e3:>8.1f} "
              f"{'same' if r['identical_labels'] else 'DIFFERENT'}")
    if args.json:
        args.json.write_text(json.dumps({"direct_ms": direct, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
