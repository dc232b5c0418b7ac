"""Scale-out on one host: 1, 2, 3 Triton servers (one instance per model each), balanced by
the client (:class:`exatrkx.service.balance.MultiServerRunner`), against one server with 2 or 3
model instances.

Every setting serves the same events with the same number of events in flight (default 4,
spread over the servers), over gRPC, for the whole-event options (4: ensemble, 5: whole
pipeline in one model). Servers of a setting run at the same time and are stopped before the
next setting starts. Prints events/s, p50/p95 ms, events per server, and the CPU cores
available: with 2 cores, more processes cannot add compute, so more servers can only help
where a single server leaves a core idle (a serial stage, the gRPC front end).

    .venv/bin/python benchmarks/bench_scaleout.py [--events PATH] [--n 20] [--in-flight 4]
        [--options 4,5] [--policy least|round_robin] [--passes 2] [--json OUT]
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
from exatrkx.serve import write_repository
from exatrkx.service.runner import make_runner
from exatrkx.study.measure import load_events, weights_or_random
from exatrkx.study.scaleout import measure_servers, servers_rows, started_servers

#: (label, servers, instances per model)
SETTINGS = [("1 server x 1 instance", 1, 1), ("2 servers x 1 instance", 2, 1),
            ("3 servers x 1 instance", 3, 1), ("1 server x 2 instances", 1, 2),
            ("1 server x 3 instances", 1, 3)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=Path, default=None)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--options", default="4,5")
    ap.add_argument("--policy", default="least")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tune_allocator()  # as the CLI and the served models do
    options = [int(o) for o in args.options.split(",")]
    cores = len(os.sched_getaffinity(0))
    points = []
    with tempfile.TemporaryDirectory(prefix="exatrkx-scaleout-") as tmp:
        scratch = Path(tmp)
        weights = weights_or_random(args.weights, scratch, lambda s: print(s, file=sys.stderr))
        events, origin = load_events(args.events, args.n)
        feats = [ev.features for ev in events]
        print(f"{len(events)} events from {origin}, {np.mean([len(f) for f in feats]):.0f} hits "
              f"on average; {args.in_flight} in flight; policy {args.policy}; {cores} cores",
              flush=True)
        repos = {i: write_repository(scratch / f"models-{i}", weights, instances=i,
                                     libtorch_variant=False) for i in (1, 2, 3)}
        with make_runner(0, weights_dir=weights) as local:
            reference = [local.run(x).labels for x in feats]
        for label, n_servers, instances in SETTINGS:
            with started_servers(repos[instances], n_servers) as urls:
                for option in options:
                    point = measure_servers(urls, option, feats, reference, args.in_flight,
                                            passes=args.passes, weights=weights,
                                            policy=args.policy)
                    point.instances = instances
                    points.append(point)
                    row = servers_rows([point])[0]
                    print(f"{label:<26} S{option}: {row['throughput_eps']:6.1f} events/s  "
                          f"p50 {row['latency_p50_ms']:7.1f} ms  "
                          f"p95 {row['latency_p95_ms']:7.1f} ms  "
                          f"per server {row['per_server']}  labels "
                          f"{'same' if row['identical_labels'] else 'DIFFERENT'}", flush=True)
    rows = servers_rows(points)
    print("speed-up against 1 server x 1 instance: " + ", ".join(
        f"{r['servers']}x{r['instances']} S{r['option']} {r['speedup']:.2f}" for r in rows))
    if args.json:
        args.json.write_text(json.dumps({"cores": cores, "in_flight": args.in_flight,
                                         "policy": args.policy, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
