"""Client TLS settings and the one-line causes of failed connections (no server; the
behaviour against real TLS servers is in tests/serve/test_tls.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.cli.options import client_tls
from exatrkx.errors import InputError, ServerFailure, ServerUnavailable
from exatrkx.service.tls import ClientTls, connection_failure
from exatrkx.service.transport import ClientConfig, remote_error


def test_client_tls_reads_and_checks_its_files(pki: Path, tmp_path: Path) -> None:
    tls = ClientTls(pki / "ca.crt")
    assert not tls.mutual and "creds" in tls.grpc_client_kwargs()
    mutual = ClientTls(pki / "ca.crt", pki / "client.crt", pki / "client.key")
    assert mutual.mutual
    named = ClientTls(pki / "ca.crt", server_name="triton.example")
    args = dict(named.grpc_client_kwargs()["channel_args"])
    assert args["grpc.ssl_target_name_override"] == "triton.example"
    assert args["grpc.max_receive_message_length"] == 2**31 - 1  # tritonclient's defaults kept
    assert ClientTls().grpc_client_kwargs()["creds"] is not None  # the system's CAs
    (tmp_path / "junk.crt").write_text("not a certificate\n")
    for kwargs, message in [
        ({"ca": pki / "nope.crt"}, "cannot read the CA certificate"),
        ({"ca": tmp_path / "junk.crt"}, "not a PEM CA certificate"),
        ({"cert": pki / "client.crt"}, "needs its key"),
        ({"key": pki / "client.key"}, "needs its key"),
        ({"cert": pki / "client.crt", "key": pki / "server.key"}, "does not belong"),
        ({"cert": pki / "client.crt", "key": pki / "gone.key"}, "cannot read the client key"),
        ({"ca": pki / "ca.crt", "server_name": " "}, "must not be empty"),
    ]:
        with pytest.raises(InputError, match=message):
            ClientTls(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="HTTP endpoint has no TLS"):
        ClientConfig(protocol="http", tls=tls)


PREFIX = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:8001: "
SSL = "Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL " \
      "routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: "


@pytest.mark.parametrize(("message", "mutual", "cause"), [
    (PREFIX + SSL + "certificate has expired: OK", None, "certificate has expired"),
    (PREFIX + SSL + "unable to get local issuer certificate: OK", None,
     "not signed by the CA given"),
    (PREFIX + "Custom verification check failed with error: UNAUTHENTICATED: Hostname "
              "Verification Check failed.", None, "does not name the host"),
    (PREFIX + "Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:100000f7:SSL "
              "routines:OPENSSL_internal:WRONG_VERSION_NUMBER", None, "speaks plain text"),
    (PREFIX + "Socket closed", "plain", "it expects TLS"),
    (PREFIX + "Socket closed", "tls", "expects a client certificate"),
    (PREFIX + "Socket closed", "mutual", "did not accept the client certificate"),
])
def test_tls_failures_are_named_and_final(pki: Path, message: str, mutual: str | None,
                                          cause: str) -> None:
    tls = {"plain": None, None: ClientTls(pki / "ca.crt"), "tls": ClientTls(pki / "ca.crt"),
           "mutual": ClientTls(pki / "ca.crt", pki / "client.crt", pki / "client.key")}[mutual]
    assert cause in (connection_failure(message, tls) or "")
    error = remote_error("exatrkx", "StatusCode.UNAVAILABLE", message, tls)
    assert isinstance(error, ServerUnavailable) and cause in str(error)
    assert not error.transient and not error.unreachable  # never sent again
    assert "\n" not in str(error)


@pytest.mark.parametrize("message", [
    PREFIX + "Failed to connect to remote host: Connection refused",
    "Socket closed",  # an established connection that broke: may pass
    "Deadline Exceeded",
])
def test_other_connection_failures_may_pass(message: str) -> None:
    assert connection_failure(message, None) is None
    error = remote_error("exatrkx", "StatusCode.UNAVAILABLE", message)
    assert error.transient  # type: ignore[union-attr]
    assert isinstance(remote_error("x", "StatusCode.DEADLINE_EXCEEDED", message),
                      ServerFailure)
    refused = remote_error("x", "StatusCode.UNAVAILABLE", PREFIX + "Connection refused")
    assert str(refused) == "x: cannot connect: Connection refused"


def test_cli_tls_options(pki: Path, tmp_path: Path) -> None:
    assert client_tls() is None
    tls = client_tls(pki / "ca.crt", pki / "client.crt", pki / "client.key", "localhost")
    assert isinstance(tls, ClientTls) and tls.mutual and tls.server_name == "localhost"
    with pytest.raises(InputError, match="needs TLS"):
        client_tls(tls_server_name="localhost")
    runner = CliRunner()
    for command in ("reconstruct", "study", "chain"):
        help_text = runner.invoke(app, [command, "--help"], terminal_width=200).output
        for option in ("--tls-ca", "--tls-cert", "--tls-key", "--tls-server-name"):
            assert option in help_text, (command, option)
    events = tmp_path / "evt_0.csv"
    events.write_text("0.1,0.2,0.3\n0.2,0.2,0.3\n")
    res = runner.invoke(app, ["reconstruct", "--events", str(events), "--option", "5",
                              "--tls-cert", str(pki / "client.crt")])
    assert res.exit_code == 2 and "needs its key" in res.output
    res = runner.invoke(app, ["study", "--tls-ca", str(pki / "ca.crt")])
    assert res.exit_code == 2 and "need --url" in res.output


def test_bearer_token_header(monkeypatch: pytest.MonkeyPatch) -> None:
    from exatrkx.contract import GRPC_API_KEY_HEADER, TOKEN_ENV
    from exatrkx.service.transport import Transport

    monkeypatch.setenv(TOKEN_ENV, "from-env")
    with Transport(ClientConfig(api_key="k" * 16)) as transport:
        assert transport.headers == {GRPC_API_KEY_HEADER: "k" * 16,
                                     "authorization": "Bearer from-env"}
    with Transport(ClientConfig(api_key="", token="")) as transport:
        assert transport.headers is None
    with Transport(ClientConfig(protocol="http", api_key="", token="t0k")) as transport:
        assert transport.headers == {"authorization": "Bearer t0k"}
