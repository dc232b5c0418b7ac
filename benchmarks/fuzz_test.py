"""Wire-level fuzzing of a running server (``exatrkx.study.wire``), full size.

Starts a server of the floor repository with the package's defaults (127.0.0.1, control APIs
and HTTP inference behind the key), runs every case of :data:`exatrkx.study.wire.CASES`
(random and truncated HTTP/2 frames, random HPACK and protobuf, a message declaring 4 GiB, a
valid 128 MiB request, random bytes and malformed requests to HTTP, 1000 connections opened
and dropped and 1000 held, 100 clients per protocol stalled mid-request), checking after each
that the server is ready and answers a good request right over HTTP and gRPC, and reading its
memory, descriptors and threads. Then:

- ``--with-key``: the malformed HTTP requests again with the key (they reach Triton's
  parsers), and a 64 MiB JSON request with and without the key (peak memory);
- ``--crash-check``: a fresh server per crash reproducer, sent *with* the key: does a key
  holder still crash it (Triton's parser, not ours)?

Every loop is bounded in count and time and targets 127.0.0.1 only.

    .venv/bin/python benchmarks/fuzz_test.py --with-key --crash-check --json fuzz.json

Exit code 0 when the server survived every case and answered right after each.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from exatrkx.serve import ServerConfig, TritonServer
from exatrkx.serve.repository import write_floor_repository
from exatrkx.study.wire import (
    CRASHERS,
    HTTP_REQUESTS,
    Budget,
    Target,
    alive,
    check,
    http_requests,
    oversized_http_body,
    raw_http,
    run_cases,
)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def target_of(server: TritonServer) -> Target:
    return Target(server.grpc_port, server.http_port, server.metrics_port, server.pid,
                  server.api_key)


def crash_check(repo: Path) -> dict:
    """Each crash reproducer sent with the right key to a fresh server."""
    out = {}
    for name in CRASHERS:
        with TritonServer(repo, ServerConfig(grpc_port=0, http_port=0, metrics_port=0)) as srv:
            t = target_of(srv)
            seen = raw_http(t, HTTP_REQUESTS[name](t.model), srv.api_key, wait_s=5.0)
            time.sleep(1.0)
            died = not alive(srv.pid)
            out[name] = {**seen, "server_died": died,
                         "exit_code": srv.poll(5) if died else None,
                         "log_tail": srv.log_tail(3).splitlines()[-3:] if died else []}
            print(f"{name} with the key: {out[name]}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", dest="cases", default=None,
                        help="run only this case (repeatable)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every count and time budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--with-key", action="store_true")
    parser.add_argument("--crash-check", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report: dict = {"command": " ".join(sys.argv), "load_average_start": load_average()}
    ok = True
    with tempfile.TemporaryDirectory(prefix="exatrkx-fuzz-") as tmp:
        repo = write_floor_repository(Path(tmp) / "floor")
        with TritonServer(repo, ServerConfig(grpc_port=0, http_port=0, metrics_port=0)) as srv:
            t = target_of(srv)
            report["cases"] = run_cases(t, args.cases, args.seed, args.scale,
                                        log=lambda line: print(line, flush=True))
            ok = all(v["after"]["ok"] for k, v in report["cases"].items() if k != "before")
            if args.with_key and alive(srv.pid):
                rng = random.Random(args.seed)
                keyed = http_requests(t, rng, 3, Budget(180 * args.scale), key=srv.api_key)
                report["http_requests_with_key"] = {"seen": keyed, "after": check(t)}
                print(f"with the key: after {report['http_requests_with_key']['after']}",
                      flush=True)
                for key in (None, srv.api_key):
                    name = f"64 MiB JSON request, {'with' if key else 'without'} the key"
                    report[name] = {"seen": oversized_http_body(t, rng, 64, Budget(240), key),
                                    "after": check(t)}
                    print(f"{name}: {report[name]}", flush=True)
                ok = ok and report["http_requests_with_key"]["after"]["ok"]
            report["server_log_errors"] = [
                ln for ln in srv.log_path.read_text(errors="replace").splitlines()
                if ln.startswith("E")][-20:]
        if args.crash_check:
            report["crash_check_with_key"] = crash_check(repo)
    report["load_average_end"] = load_average()
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(json.dumps({k: report[k] for k in ("load_average_start", "load_average_end")}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
