"""Long soak of the served pipeline: does ``tritonserver`` (or a backend stub) keep growing?

Starts a loopback server with the shipped weights (package launcher: 127.0.0.1, the key),
computes the in-process labels (option 0) of the events, then for ``--minutes`` sends the
events over and over through options 4 and 5 (alternating, ``--clients`` in flight each) and
checks every answer, while :class:`exatrkx.study.loadtest.MemorySampler` reads the resident
memory of ``tritonserver`` and of every backend stub (by model) every ``--sample-s``. With
``--poll-s`` a second thread also polls the server's statistics (gRPC, with the key) and its
Prometheus metrics that often, as a monitoring system would.

Reports, per process, the least-squares slope in MB/min over the whole run, its second half
and each of ``--windows`` windows (growth that levels off shows falling window slopes).

    nice .venv/bin/python benchmarks/soak_test.py --events DIR --minutes 30 \\
        --json soak.json [--poll-s 0.2]

A benchmark, not a test: it takes as long as it is told. Exit code 0 when no request failed
and every answer equalled option 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

from exatrkx.core.allocator import tune_allocator
from exatrkx.errors import ExatrkxError
from exatrkx.io import iter_events
from exatrkx.io.shared import hnl_events_dir
from exatrkx.serve import ServerConfig, TritonServer, write_repository
from exatrkx.service.runner import make_runner
from exatrkx.study.loadtest import MemorySampler


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (``uptime``'s figures)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def poll_loop(server: TritonServer, key: str | None, every_s: float,
              stop: threading.Event, counts: dict[str, int]) -> None:
    """Statistics over gRPC (with the key) and the metrics page, every ``every_s``."""
    import tritonclient.grpc as grpcclient

    from exatrkx.contract import GRPC_API_KEY_HEADER

    headers = {GRPC_API_KEY_HEADER: key} if key else None
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        while not stop.wait(every_s):
            try:
                client.get_inference_statistics(headers=headers, client_timeout=10)
                with urllib.request.urlopen(server.metrics_url, timeout=10) as resp:
                    resp.read()
                counts["polls"] += 1
            except Exception:  # counted, the soak goes on
                counts["poll_errors"] += 1
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=None,
                        help="events (default: the shared HNL events)")
    parser.add_argument("--max-events", type=int, default=20)
    parser.add_argument("--options", default="4,5")
    parser.add_argument("--clients", type=int, default=1, help="events in flight per option")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--poll-s", type=float, default=0.0,
                        help="poll statistics and metrics this often (0: never)")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tune_allocator()
    options = [int(o) for o in args.options.split(",")]
    events_dir = args.events or hnl_events_dir()
    if events_dir is None:
        parser.error("no events: pass --events (the shared HNL events are absent)")
    events = [ev.features for ev in iter_events(events_dir)][:args.max_events]
    with make_runner(0, weights_dir=args.weights) as local:
        reference = [r.labels for r in local.run_many(events)]
    report: dict = {"command": " ".join(sys.argv), "events": len(events),
                    "hits_mean": float(np.mean([len(x) for x in events])),
                    "options": options, "clients": args.clients, "minutes": args.minutes,
                    "poll_s": args.poll_s, "load_average_start": load_average(),
                    "pid": os.getpid()}
    counts = {"requests": 0, "errors": 0, "mismatches": 0, "polls": 0, "poll_errors": 0}
    first_errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="exatrkx-soak-") as tmp:
        repo = write_repository(Path(tmp) / "models", args.weights, libtorch_variant=False)
        server = TritonServer(repo, ServerConfig(grpc_port=0, http_port=0, metrics_port=0,
                                                 startup_timeout=300))
        with server:
            assert server.pid is not None
            key = server.api_key
            runners = {o: make_runner(o, server.grpc_url, concurrency=args.clients,
                                      api_key=key, timeout_s=120)
                       for o in options}
            stop = threading.Event()
            poller = None
            if args.poll_s > 0:
                poller = threading.Thread(target=poll_loop, daemon=True,
                                          args=(server, key, args.poll_s, stop, counts))
            lock = threading.Lock()
            end = time.monotonic() + args.minutes * 60

            def client(option: int, worker: int) -> None:
                i = worker
                while time.monotonic() < end:
                    k = i % len(events)
                    i += args.clients
                    try:
                        labels = runners[option].run(events[k]).labels
                        bad = not np.array_equal(labels, reference[k])
                        err = ""
                    except ExatrkxError as exc:
                        bad, err = False, str(exc)
                    with lock:
                        counts["requests"] += 1
                        counts["mismatches"] += int(bad)
                        if err:
                            counts["errors"] += 1
                            if len(first_errors) < 5:
                                first_errors.append(f"option {option}: {err}")

            threads = [threading.Thread(target=client, args=(o, w), daemon=True)
                       for o in options for w in range(args.clients)]
            with MemorySampler(server.pid, args.sample_s) as sampler:
                if poller is not None:
                    poller.start()
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                stop.set()
                if poller is not None:
                    poller.join()
            for runner in runners.values():
                runner.close()
            report["dead_stubs"] = server.dead_stubs()
    report.update(counts, first_errors=first_errors, load_average_end=load_average(),
                  memory=sampler.summary(args.windows),
                  samples=[[round(t, 1), {k: round(v / 2**20, 2) for k, v in rss.items()}]
                           for t, rss in sampler.samples])
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    brief = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(brief, indent=1))
    return 0 if counts["requests"] and not counts["errors"] and not counts["mismatches"] else 1


if __name__ == "__main__":
    sys.exit(main())
