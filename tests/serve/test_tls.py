"""gRPC over TLS against real servers: the server's settings, the client's, and every
failure a user meets (plain text against TLS, unknown CA, expired certificate, wrong host
name, a missing or refused client certificate) as one line and exit code 3, never retried and
never a hang. The certificates are made by the tests (``pki`` fixture)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.errors import InputError, ServerUnavailable
from exatrkx.serve import ServerConfig, TritonServer, free_ports
from exatrkx.serve.repository import write_floor_repository
from exatrkx.serve.tls import ServerTls
from exatrkx.service.runner import make_runner
from exatrkx.service.tls import ClientTls
from exatrkx.service.transport import ClientConfig, Transport

X = np.random.default_rng(5).random((30, 3), dtype=np.float32)


def test_server_tls_checks_its_files_first(pki: Path, tmp_path: Path) -> None:
    tls = ServerTls(pki / "server.crt", pki / "server.key")
    assert not tls.mutual and set(tls.names) == {"127.0.0.1", "localhost"}
    assert tls.args() == ["--grpc-use-ssl=true", f"--grpc-server-cert={pki / 'server.crt'}",
                          f"--grpc-server-key={pki / 'server.key'}"]
    mutual = ServerTls(pki / "server.crt", pki / "server.key", pki / "ca.crt")
    # --grpc-root-cert alone checks nothing in Triton 2.51: mutual TLS needs both flags
    assert mutual.args()[-2:] == ["--grpc-use-ssl-mutual=true",
                                  f"--grpc-root-cert={pki / 'ca.crt'}"]
    (tmp_path / "junk.pem").write_text("junk\n")
    for args, message in [
        ((pki / "expired.crt", pki / "expired.key"), "expired on 2020-01-02"),
        ((pki / "server.crt", pki / "client.key"), "does not belong"),
        ((pki / "client.crt", pki / "client.key"), "not for TLS servers"),
        ((pki / "nope.crt", pki / "server.key"), "cannot read the server certificate"),
        ((tmp_path / "junk.pem", pki / "server.key"), "not a PEM certificate"),
        ((pki / "server.crt", pki / "server.key", tmp_path / "junk.pem"), "not a PEM CA"),
    ]:
        with pytest.raises(InputError, match=message):
            ServerTls(*args)


def test_launcher_tls_and_http_binding(pki: Path, tmp_path: Path) -> None:
    tls = ServerTls(pki / "server.crt", pki / "server.key", pki / "ca.crt")
    server = TritonServer(tmp_path, ServerConfig(host="0.0.0.0", tls=tls))
    args = server.command(tmp_path)
    assert "--grpc-address=0.0.0.0" in args and "--http-address=127.0.0.1" in args
    assert set(tls.args()) <= set(args) and server.tls is tls
    assert server.http_url.startswith("127.0.0.1:")
    exposed = TritonServer(tmp_path, ServerConfig(http_host="0.0.0.0"))
    assert "--http-address=0.0.0.0" in exposed.command(tmp_path)


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_floor_repository(tmp_path_factory.mktemp("floor") / "models")


@pytest.fixture(scope="module")
def tls_server(floor: Path, pki: Path, server_config: Callable[..., ServerConfig]
               ) -> Iterator[TritonServer]:
    tls = ServerTls(pki / "server.crt", pki / "server.key")
    with TritonServer(floor, server_config(tls=tls)) as srv:
        yield srv


@pytest.fixture(scope="module")
def mutual_server(floor: Path, pki: Path, server_config: Callable[..., ServerConfig]
                  ) -> Iterator[TritonServer]:
    tls = ServerTls(pki / "server.crt", pki / "server.key", pki / "ca.crt")
    with TritonServer(floor, server_config(tls=tls)) as srv:
        yield srv


def identity(url: str, tls: ClientTls | None, **kwargs: object) -> Transport:
    """A transport with retries (a TLS failure must not use them)."""
    return Transport(ClientConfig(url=url, tls=tls, retries=3, backoff_s=0.2, timeout_s=10,
                                  **kwargs))  # type: ignore[arg-type]


def assert_refused(transport: Transport, cause: str) -> None:
    """Both readiness and a request fail at once with ``cause``, not retried."""
    with transport:
        with pytest.raises(ServerUnavailable, match=cause) as info:
            transport.check_ready()
        assert "no ready Triton server" in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(ServerUnavailable, match=cause) as info:
            transport.infer("identity", {"FEATURES": X}, ["OUTPUT"])
        assert not info.value.transient and not info.value.unreachable
        assert transport.resent == 0


def test_tls_server_and_its_clients(tls_server: TritonServer, pki: Path) -> None:
    ca = ClientTls(pki / "ca.crt")
    for url in (tls_server.grpc_url, f"localhost:{tls_server.grpc_port}"):
        with identity(url, ca) as good:
            good.check_ready()
            out = good.infer("identity", {"FEATURES": X}, ["OUTPUT"])
            np.testing.assert_array_equal(out["OUTPUT"], X)
            assert "identity" in good.statistics()  # the key travels over TLS too
    # a client certificate is harmless when the server does not ask for one
    with identity(tls_server.grpc_url, ClientTls(pki / "ca.crt", pki / "client.crt",
                                                 pki / "client.key")) as extra:
        extra.check_ready()
    assert_refused(identity(tls_server.grpc_url, None), "it expects TLS")
    assert_refused(identity(tls_server.grpc_url, ClientTls(pki / "other-ca.crt")),
                   "not signed by the CA given")
    assert_refused(identity(tls_server.grpc_url,
                            ClientTls(pki / "ca.crt", server_name="wrong.example.invalid")),
                   "does not name the host")
    with pytest.raises(InputError, match="HTTP endpoint has no TLS"):
        make_runner(5, tls_server.http_url, "http", tls=ca)
    # the study against a given server over TLS
    from exatrkx.study.config import StudyConfig
    from exatrkx.study.servers import external_endpoint

    endpoint = external_endpoint(StudyConfig(url=tls_server.grpc_url, tls=ca))
    assert endpoint.tls is ca and endpoint.client("grpc")["tls"] is ca
    assert endpoint.client("http")["tls"] is None
    with pytest.raises(ServerUnavailable, match="it expects TLS"):
        external_endpoint(StudyConfig(url=tls_server.grpc_url))
    assert tls_server.is_ready()  # HTTP (readiness) stays plain text on 127.0.0.1


def test_mutual_tls(mutual_server: TritonServer, pki: Path) -> None:
    good = ClientTls(pki / "ca.crt", pki / "client.crt", pki / "client.key")
    with identity(mutual_server.grpc_url, good) as transport:
        np.testing.assert_array_equal(
            transport.infer("identity", {"FEATURES": X}, ["OUTPUT"])["OUTPUT"], X)
    assert_refused(identity(mutual_server.grpc_url, ClientTls(pki / "ca.crt")),
                   "expects a client certificate")
    assert_refused(identity(mutual_server.grpc_url,
                            ClientTls(pki / "ca.crt", pki / "rogue-client.crt",
                                      pki / "rogue-client.key")),
                   "did not accept the client certificate")
    # a certificate for servers only is no client certificate
    assert_refused(identity(mutual_server.grpc_url,
                            ClientTls(pki / "ca.crt", pki / "server.crt", pki / "server.key")),
                   "did not accept the client certificate")
    assert_refused(identity(mutual_server.grpc_url, None), "it expects TLS")


def test_expired_and_wrong_host_certificates(floor: Path, pki: Path,
                                             server_config: Callable[..., ServerConfig]) -> None:
    # ServerTls refuses an expired certificate; Triton is given one directly here
    for name, cause in (("expired", "certificate has expired"),
                        ("wronghost", "does not name the host")):
        flags = ("--grpc-use-ssl=true", f"--grpc-server-cert={pki / (name + '.crt')}",
                 f"--grpc-server-key={pki / (name + '.key')}")
        with TritonServer(floor, server_config(extra_args=flags)) as srv:
            assert_refused(identity(srv.grpc_url, ClientTls(pki / "ca.crt")), cause)


def test_tls_client_against_a_plain_server(floor: Path, pki: Path,
                                           server_config: Callable[..., ServerConfig]) -> None:
    with TritonServer(floor, server_config()) as srv:
        assert_refused(identity(srv.grpc_url, ClientTls(pki / "ca.crt")),
                       "the server speaks plain text")


def reconstruct_cli(url: str, events: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``exatrkx reconstruct --option 5`` in a process of its own (stderr as users see it);
    the timeout only guards against a hang."""
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    return subprocess.run([sys.executable, "-m", "exatrkx.cli", "reconstruct", "--events",
                           str(events), "--option", "5", "--url", url, "--timeout", "20",
                           *args], capture_output=True, text=True, timeout=240, env=env)


@pytest.fixture(scope="module")
def feature_file(tmp_path_factory: pytest.TempPathFactory, events: list[np.ndarray]) -> Path:
    path = tmp_path_factory.mktemp("tls-events") / "evt_0.csv"
    np.savetxt(path, events[2], delimiter=",", fmt="%.7f")
    return path


@pytest.mark.parametrize(("client", "cause"), [
    ((), "it expects TLS (give --tls-ca)"),
    (("--tls-ca", "other-ca.crt"), "not signed by the CA given (--tls-ca)"),
    (("--tls-ca", "ca.crt", "--tls-server-name", "wrong.example.invalid"),
     "does not name the host"),
])
def test_cli_tls_failures_are_one_line_exit_3(tls_server: TritonServer, pki: Path,
                                              feature_file: Path, client: tuple[str, ...],
                                              cause: str) -> None:
    args = [str(pki / a) if a.endswith(".crt") else a for a in client]
    res = reconstruct_cli(tls_server.grpc_url, feature_file, *args)
    assert res.returncode == 3, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and cause in lines[0], lines


def test_the_pipeline_over_mutual_tls(repository: Path, weights_dir: Path, pki: Path,
                                      feature_file: Path, events: list[np.ndarray],
                                      server_config: Callable[..., ServerConfig],
                                      acts_events: Path, acts_detector: Any) -> None:
    tls = ServerTls(pki / "server.crt", pki / "server.key", pki / "ca.crt")
    client = ClientTls(pki / "ca.crt", pki / "client.crt", pki / "client.key")
    with make_runner(0, weights_dir=weights_dir) as local:
        reference = [r.labels for r in local.run_many(events)]
    with TritonServer(repository, server_config(tls=tls)) as srv:
        for option in (1, 4, 5):
            with make_runner(option, srv.grpc_url, weights_dir=weights_dir, tls=client) as r:
                for features, labels in zip(events, reference, strict=True):
                    np.testing.assert_array_equal(r.run(features).labels, labels)
        from exatrkx.service.balance import MultiServerRunner

        with MultiServerRunner([srv.grpc_url], 5, tls=client, health_interval_s=0) as multi:
            np.testing.assert_array_equal(multi.run(events[2]).labels, reference[2])
        certs = ("--tls-ca", str(pki / "ca.crt"), "--tls-cert", str(pki / "client.crt"),
                 "--tls-key", str(pki / "client.key"))
        res = reconstruct_cli(srv.grpc_url, feature_file, *certs)
        assert res.returncode == 0, res.stderr
        assert "1 events, 0 failed" in res.stdout
        res = reconstruct_cli(srv.grpc_url, feature_file, *certs[:2])
        assert res.returncode == 3 and "expects a client certificate" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        # the ACTS chain: our finder through option 5 over mutual TLS finds option 0's tracks
        from exatrkx.acts.app import run_chain

        local = run_chain(acts_events, "gnn", 0, weights_dir=weights_dir,
                          detector=acts_detector)
        chain = ["chain", "--events", str(acts_events), "--finders", "gnn", "--option", "5",
                 "--url", srv.grpc_url, "--json"]
        res = CliRunner().invoke(app, [*chain, *certs])
        assert res.exit_code == 0, res.output
        summary = json.loads(res.output.strip().splitlines()[-1])
        assert summary["events"] == local.summary["events"] == 4
        assert summary["finders"]["gnn"]["counts"] == local.summary["finders"]["gnn"]["counts"]
        res = CliRunner().invoke(app, [*chain, *certs[:2]])
        assert res.exit_code == 3 and "expects a client certificate" in res.output


def test_serve_command_with_tls(floor: Path, pki: Path) -> None:
    ports = free_ports(3)
    base = [sys.executable, "-m", "exatrkx.cli", "serve", "--repository", str(floor),
            "--grpc-port", str(ports[0]), "--http-port", str(ports[1]),
            "--metrics-port", str(ports[2])]
    certs = ["--tls-cert", str(pki / "server.crt"), "--tls-key", str(pki / "server.key")]
    for extra, message in [
        (certs[:2], "needs both --tls-cert and --tls-key"),
        (["--tls-cert", str(pki / "expired.crt"), "--tls-key", str(pki / "expired.key")],
         "expired on 2020-01-02"),
        (["--tls-ca", str(pki / "ca.crt")], "needs --tls-cert"),
        (["--inference-key", "some"], "--inference-key must be one of"),
    ]:
        res = subprocess.run(base + extra, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and message in res.stderr, res.stderr
    with subprocess.Popen([*base, *certs, "--tls-ca", str(pki / "ca.crt")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            while not lines or not lines[-1].startswith(("ready", "error")):
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
            text = "".join(lines)
            assert f"gRPC:    127.0.0.1:{ports[0]} (TLS, client certificates of" in text, text
            assert f"HTTP:    127.0.0.1:{ports[1]} (plain text)" in text
            client = ClientTls(pki / "ca.crt", pki / "client.crt", pki / "client.key")
            with identity(f"127.0.0.1:{ports[0]}", client, api_key="") as transport:
                np.testing.assert_array_equal(
                    transport.infer("identity", {"FEATURES": X}, ["OUTPUT"])["OUTPUT"], X)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
