"""TLS of the service: what each failure looks like from the command line, and what TLS costs.

``--cases``: starts loopback servers of the shipped model repository (plain text, TLS, mutual
TLS, an expired certificate, a certificate for another host name), runs
``exatrkx reconstruct --option 5`` against each with the client settings of every case, and
records the one line on stderr, the exit code and the seconds until the command ended.

``--bench N``: one ``identity`` request (16 x 3 FP32) over gRPC, ``N`` times each on one
reused connection and on a new connection per request (connect, TLS handshake, request,
close), against a plain, a TLS and a mutual-TLS server of the floor repository; medians and
90th percentiles in ms. The figures depend on the machine's load: ``uptime`` goes with them.

    .venv/bin/python benchmarks/tls_test.py --cases --bench 200 --json tls.json

Test certificates are made in a temporary folder (:func:`exatrkx.util.pki.make_test_pki`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from exatrkx.serve import ServerConfig, TritonServer, free_port, write_repository
from exatrkx.serve.repository import write_floor_repository
from exatrkx.serve.tls import ServerTls
from exatrkx.service.tls import ClientTls
from exatrkx.service.transport import ClientConfig, Transport
from exatrkx.util.pki import make_test_pki


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def start(repo: Path, tls: ServerTls | None, workdir: Path | None = None) -> TritonServer:
    """A server of ``repo`` on free ports; TLS files are not checked here (an expired
    certificate must reach Triton for the expired case)."""
    cfg = ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=300,
                       extra_args=tuple(tls.args()) if tls is not None else ())
    return TritonServer(repo, cfg, workdir).start()


def unchecked_tls(certs: Path, name: str, mutual: bool = False) -> ServerTls:
    """A :class:`ServerTls` without its checks (for the expired certificate)."""
    tls = object.__new__(ServerTls)
    object.__setattr__(tls, "cert", certs / f"{name}.crt")
    object.__setattr__(tls, "key", certs / f"{name}.key")
    object.__setattr__(tls, "ca", certs / "ca.crt" if mutual else None)
    return tls


def run_cases(certs: Path, scratch: Path) -> list[dict]:
    repo = write_repository(scratch / "models", None, libtorch_variant=False)
    events = scratch / "events"
    events.mkdir()
    rng = np.random.default_rng(0)
    hits = np.stack([rng.uniform(0.03, 1, 200), rng.uniform(-1, 1, 200),
                     rng.uniform(-1, 1, 200)], axis=1)
    np.savetxt(events / "evt_0.csv", hits, delimiter=",", fmt="%.6f")
    c = {name: str(certs / name) for name in ("ca.crt", "other-ca.crt", "client.crt",
                                                "client.key", "rogue-client.crt",
                                                "rogue-client.key")}
    servers = {
        "plain": None,
        "tls": unchecked_tls(certs, "server"),
        "mutual": unchecked_tls(certs, "server", mutual=True),
        "expired": unchecked_tls(certs, "expired"),
        "wronghost": unchecked_tls(certs, "wronghost"),
    }
    cases = [
        ("plain", "plain client, plain server (control)", []),
        ("plain", "TLS client -> plain-text server", ["--tls-ca", c["ca.crt"]]),
        ("tls", "TLS, the right CA", ["--tls-ca", c["ca.crt"]]),
        ("tls", "plain-text client -> TLS server", []),
        ("tls", "server certificate of a CA the client does not trust",
         ["--tls-ca", c["other-ca.crt"]]),
        ("tls", "--tls-server-name that the certificate lacks",
         ["--tls-ca", c["ca.crt"], "--tls-server-name", "wrong.example.invalid"]),
        ("expired", "expired server certificate", ["--tls-ca", c["ca.crt"]]),
        ("wronghost", "server certificate for another host name", ["--tls-ca", c["ca.crt"]]),
        ("mutual", "mutual TLS with a client certificate",
         ["--tls-ca", c["ca.crt"], "--tls-cert", c["client.crt"], "--tls-key", c["client.key"]]),
        ("mutual", "mutual TLS server, no client certificate", ["--tls-ca", c["ca.crt"]]),
        ("mutual", "mutual TLS server, client certificate of an unknown CA",
         ["--tls-ca", c["ca.crt"], "--tls-cert", c["rogue-client.crt"],
          "--tls-key", c["rogue-client.key"]]),
        ("mutual", "plain-text client -> mutual TLS server", []),
        (None, "nothing listens at the port", ["--tls-ca", c["ca.crt"]]),
        (None, "missing CA file", ["--tls-ca", str(certs / "nope.crt")]),
    ]
    rows = []
    for kind, tls in servers.items():
        todo = [case for case in cases if case[0] == kind]
        server = start(repo, tls)
        try:
            for _, name, args in todo:
                rows.append(run_cli(name, kind, server.grpc_url, events, args))
        finally:
            server.cleanup()
    for _, name, args in (case for case in cases if case[0] is None):
        rows.append(run_cli(name, "none", f"127.0.0.1:{free_port()}", events, args))
    return rows


def in_process(url: str, args: list[str]) -> tuple[float, str]:
    """Seconds until ``make_runner`` (option 5) is ready or fails, and its error."""
    from exatrkx.cli.options import client_tls
    from exatrkx.errors import ExatrkxError
    from exatrkx.service.runner import make_runner

    opts = dict(zip(args[::2], args[1::2], strict=True))
    t0 = time.perf_counter()
    try:
        tls = client_tls(*(opts.get(f"--tls-{k}") and Path(opts[f"--tls-{k}"])
                           for k in ("ca", "cert", "key")),
                         opts.get("--tls-server-name"))
        make_runner(5, url, tls=tls, timeout_s=10, api_key="").close()
        error = ""
    except ExatrkxError as exc:
        error = f"{type(exc).__name__} (transient={getattr(exc, 'transient', None)})"
    return time.perf_counter() - t0, error


def run_cli(name: str, server: str, url: str, events: Path, args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "exatrkx.cli", "reconstruct", "--events", str(events),
           "--option", "5", "--url", url, "--timeout", "10", *args]
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "EXATRKX_API_KEY": ""})
    seconds = time.monotonic() - t0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    fail_s, error = in_process(url, args)
    row = {"case": name, "server": server, "exit": res.returncode,
           "seconds": round(seconds, 2), "stderr_lines": len(lines),
           "in_process_s": round(fail_s, 4), "in_process_error": error,
           "message": lines[0] if lines else res.stdout.strip().splitlines()[-1:]}
    print(f"{name:60s} exit {res.returncode} {seconds:5.1f} s (in process {fail_s * 1e3:.0f} ms "
          f"{error})  {row['message']}", flush=True)
    return row


def bench(certs: Path, scratch: Path, n: int) -> dict:
    repo = write_floor_repository(scratch / "floor")
    x = np.random.default_rng(1).random((16, 3), dtype=np.float32)
    kinds = {
        "plain": (None, None),
        "tls": (ServerTls(certs / "server.crt", certs / "server.key"),
                ClientTls(certs / "ca.crt")),
        "mutual": (ServerTls(certs / "server.crt", certs / "server.key", certs / "ca.crt"),
                   ClientTls(certs / "ca.crt", certs / "client.crt", certs / "client.key")),
    }
    out: dict = {}
    for kind, (server_tls, client_tls) in kinds.items():
        server = start(repo, server_tls)
        try:
            config = ClientConfig(url=server.grpc_url, tls=client_tls, timeout_s=30,
                                  retries=0, api_key="")
            with Transport(config) as reused:
                for _ in range(20):
                    reused.infer("identity", {"FEATURES": x}, ["OUTPUT"])
                t_reused = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    reused.infer("identity", {"FEATURES": x}, ["OUTPUT"])
                    t_reused.append((time.perf_counter() - t0) * 1e3)
            t_fresh = []
            for _ in range(n):
                t0 = time.perf_counter()
                with Transport(config) as fresh:
                    fresh.infer("identity", {"FEATURES": x}, ["OUTPUT"])
                t_fresh.append((time.perf_counter() - t0) * 1e3)
        finally:
            server.cleanup()

        def summary(values: list[float]) -> dict:
            values = sorted(values)
            return {"median_ms": round(statistics.median(values), 3),
                    "p90_ms": round(values[int(0.9 * len(values))], 3), "n": len(values)}

        out[kind] = {"reused": summary(t_reused), "fresh_connection": summary(t_fresh)}
        print(f"{kind}: {out[kind]}", flush=True)
    for kind in ("tls", "mutual"):
        out[f"{kind}_extra_ms"] = {
            way: round(out[kind][way]["median_ms"] - out["plain"][way]["median_ms"], 3)
            for way in ("reused", "fresh_connection")}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", action="store_true")
    parser.add_argument("--bench", type=int, default=0, help="requests per way and kind")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (args.cases or args.bench):
        parser.error("nothing to do: --cases and/or --bench N")
    report: dict = {"load_average_start": load_average()}
    with tempfile.TemporaryDirectory(prefix="exatrkx-tls-") as tmp:
        certs = make_test_pki(Path(tmp) / "certs")
        if args.cases:
            report["cases"] = run_cases(certs, Path(tmp))
        if args.bench:
            report["bench"] = bench(certs, Path(tmp), args.bench)
    report["load_average_end"] = load_average()
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    ok = all(r["stderr_lines"] <= 1 and r["exit"] in (0, 2, 3)
             for r in report.get("cases", []))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
