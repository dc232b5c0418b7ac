"""Fault test of the service: a backend process killed, then the server killed, mid-run.

1. Backend process: option 5 runs over the events from ``--clients`` connections while the
   ``exatrkx_pipeline`` stub is killed (SIGKILL). Reports the events that got errors (after
   the client's retries), whether Triton brings the model back by itself within
   ``--wait-s``, and the time a restart of the server (what ``exatrkx serve`` does when a
   stub dies) takes until the first correct answer.
2. Server: ``exatrkx reconstruct --option 5 --out DIR`` runs as a command while the server is
   killed (SIGKILL, stubs included). Reports the events it lists as not processed, checks that
   every tracks file present is complete, restarts the server and runs ``reconstruct
   --resume``, then checks that every event has tracks equal to the in-process labels.

    .venv/bin/python benchmarks/fault_test.py --json fault.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from exatrkx.contract import API_KEY_ENV, FEATURES, LABELS, PIPELINE_MODEL
from exatrkx.core.allocator import tune_allocator
from exatrkx.errors import RemoteError
from exatrkx.io import event_sources, read_event, tracks_path
from exatrkx.io.shared import hnl_events_dir
from exatrkx.serve import ServerConfig, TritonServer, write_repository
from exatrkx.service.runner import make_runner
from exatrkx.service.transport import ClientConfig, Transport
from exatrkx.study.loadtest import run_load


def pipeline_stub(server: TritonServer) -> int:
    """Pid of the ``exatrkx_pipeline`` model's stub."""
    for pid in server.stub_pids():
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        if f"/{PIPELINE_MODEL}/1/model.py".encode() in cmd:
            return pid
    raise RuntimeError("no exatrkx_pipeline stub")


def answers(server: TritonServer, features: np.ndarray, want: np.ndarray) -> bool:
    """One option-5 request answered correctly (no retries)."""
    cfg = ClientConfig(url=server.grpc_url, retries=0, timeout_s=10, api_key=server.api_key)
    try:
        with Transport(cfg) as transport:
            got = transport.infer(PIPELINE_MODEL, {FEATURES: features}, [LABELS])
    except RemoteError:
        return False
    return bool(np.array_equal(got["LABELS"], want))


def stub_fault(server: TritonServer, events: list[np.ndarray], reference: list[np.ndarray],
               clients: int, wait_s: float) -> dict:
    """Kill the pipeline stub during a load run; see the module docstring."""
    victim = pipeline_stub(server)
    killed_at: list[float] = []

    def kill() -> None:
        time.sleep(2.0)
        os.kill(victim, signal.SIGKILL)
        killed_at.append(time.monotonic())

    killer = threading.Thread(target=kill)
    killer.start()
    result = run_load(server.grpc_url, events, reference, 5, clients=clients, rounds=1,
                      api_key=server.api_key)
    killer.join()
    out: dict = {"requests": result.requests, "errors": len(result.errors),
                 "mismatches": len(result.mismatches), "resent": result.resent,
                 "first_errors": result.errors[:3]}
    # does Triton bring the model back by itself?
    deadline = killed_at[0] + wait_s
    recovered = None
    while time.monotonic() < deadline:
        if answers(server, events[0], reference[0]):
            recovered = time.monotonic() - killed_at[0]
            break
        time.sleep(0.5)
    out["triton_recovers_within_s"] = wait_s
    out["triton_recovered_after_s"] = recovered
    out["server_still_reports_ready"] = server.is_ready()
    out["dead_stubs_detected"] = server.dead_stubs() == [victim]
    # what the supervisor does: restart, then the first correct answer
    t0 = time.monotonic()
    server.restart()
    ready = time.monotonic() - t0
    while not answers(server, events[0], reference[0]):
        time.sleep(0.1)
    out["restart_ready_s"] = round(ready, 2)
    out["restart_first_answer_s"] = round(time.monotonic() - t0, 2)
    return out


def read_tracks(path: Path) -> np.ndarray:
    return pd.read_csv(path)["track_id"].to_numpy()


def server_fault(server: TritonServer, events_dir: Path, reference: list[np.ndarray],
                 out_dir: Path, kill_after_s: float) -> dict:
    """Kill the server during ``reconstruct``, restart, ``reconstruct --resume``."""
    sources = event_sources(events_dir)
    env = {**os.environ, API_KEY_ENV: server.api_key or ""}
    cmd = [sys.executable, "-m", "exatrkx.cli", "reconstruct", "--events", str(events_dir),
           "--option", "5", "--url", server.grpc_url, "--out", str(out_dir), "--json",
           "--retries", "2", "--timeout", "30"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as proc:
        # wait for the first tracks, then a little more, then kill the server's group
        while proc.poll() is None and not any(out_dir.glob("*-tracks.csv")):
            time.sleep(0.05)
        time.sleep(kill_after_s)
        assert server.pid is not None
        os.killpg(server.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        stdout, stderr = proc.communicate(timeout=600)
        t_report = time.monotonic() - t_kill
    summary = json.loads(stdout.strip().splitlines()[-1])
    written = sorted(p.name for p in out_dir.glob("*-tracks.csv"))
    listed = [Path(s).name for s in summary["unprocessed"]]
    missing = [s.name for s in sources if not tracks_path(out_dir, s).exists()]
    out: dict = {"exit_code": proc.returncode, "processed": summary["events"],
                 "unprocessed": len(listed), "unprocessed_listed_exactly": listed == missing,
                 "seconds_from_kill_to_report": round(t_report, 2),
                 "temp_files_left": len([p for p in out_dir.iterdir()
                                         if p.name.startswith(".")]),
                 "stderr_tail": stderr.strip().splitlines()[-2:]}
    complete = all(len(read_tracks(out_dir / name)) == len(reference[i])
                   for i, s in enumerate(sources)
                   if (name := tracks_path(out_dir, s).name) in written)
    out["tracks_files_complete"] = complete
    server.stop()
    t0 = time.monotonic()
    server.start()
    out["server_restart_s"] = round(time.monotonic() - t0, 2)
    res = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env,
                         timeout=900)
    resumed = json.loads(res.stdout.strip().splitlines()[-1])
    out["resume"] = {"exit_code": res.returncode, "processed": resumed["events"],
                     "skipped": resumed["skipped"], "failed": resumed["failed"]}
    out["all_tracks_equal_option_0"] = all(
        np.array_equal(read_tracks(tracks_path(out_dir, s)), reference[i])
        for i, s in enumerate(sources))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=None,
                        help="events (default: the shared HNL events)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--wait-s", type=float, default=30.0,
                        help="how long to wait for Triton to bring a model back")
    parser.add_argument("--kill-after-s", type=float, default=2.0)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tune_allocator()  # as the CLI and the served models do
    events_dir = args.events or hnl_events_dir()
    if events_dir is None:
        parser.error("no events: pass --events (the shared HNL events are absent)")
    sources = event_sources(events_dir)
    events = [read_event(s).features for s in sources]
    with make_runner(0, weights_dir=args.weights) as local:
        reference = [r.labels for r in local.run_many(events)]
    report: dict = {"events": len(events)}
    with tempfile.TemporaryDirectory(prefix="exatrkx-fault-") as tmp:
        repo = write_repository(Path(tmp) / "models", args.weights, libtorch_variant=False)
        cfg = ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=300,
                           exit_timeout=2)
        with TritonServer(repo, cfg) as server:
            report["stub_kill"] = stub_fault(server, events, reference, args.clients,
                                             args.wait_s)
            print(json.dumps(report["stub_kill"]), file=sys.stderr)
            report["server_kill"] = server_fault(server, events_dir, reference,
                                                 Path(tmp) / "tracks", args.kill_after_s)
            print(json.dumps(report["server_kill"]), file=sys.stderr)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    kill = report["server_kill"]
    ok = (kill["unprocessed_listed_exactly"] and kill["tracks_files_complete"]
          and kill["all_tracks_equal_option_0"] and kill["resume"]["exit_code"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
