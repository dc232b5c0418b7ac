"""TLS of the client's gRPC connection, and one-line causes for connections that fail.

A :class:`ClientTls` names the CA the server's certificate must chain to (``--tls-ca``;
None: the system's CAs) and, for mutual TLS, the client's certificate and key
(``--tls-cert``, ``--tls-key``). Files are read and checked when it is made, so a missing or
malformed file is bad input (exit code 2) before any connection is tried.

Triton (gRPC core underneath) reports every failed connection, TLS included, as
``UNAVAILABLE``; :func:`connection_failure` turns the messages of failures that never pass
(certificate expired, unknown CA, wrong host name, TLS against plain text and the reverse, a
refused client certificate) into one line naming the cause. The client does not send those
requests again.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exatrkx.errors import InputError

#: tritonclient's own channel options (a client that passes ``channel_args`` replaces them
#: all, so they are repeated when one is added).
_INT32_MAX = 2**31 - 1
DEFAULT_CHANNEL_ARGS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", _INT32_MAX),
    ("grpc.max_receive_message_length", _INT32_MAX),
    ("grpc.keepalive_time_ms", _INT32_MAX),
    ("grpc.keepalive_timeout_ms", 20000),
    ("grpc.keepalive_permit_without_calls", False),
    ("grpc.http2.max_pings_without_data", 2),
)


def quiet_grpc() -> None:
    """Keep gRPC core from logging a failed TLS handshake on stderr at INFO level (the
    client raises one error that names the cause); only before gRPC is first imported,
    and only when ``$GRPC_VERBOSITY`` is not set."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the {what} ({exc.strerror or exc})", path) from None


@dataclass(frozen=True)
class ClientTls:
    """TLS settings of a client (gRPC).

    Attributes:
        ca: PEM file of the CA(s) the server's certificate must chain to (None: the
            system's CAs).
        cert: PEM client certificate, for a server that asks for one (mutual TLS).
        key: PEM private key of ``cert``.
        server_name: the name the server's certificate must carry when it differs from the
            host of the address (e.g. a tunnel to ``127.0.0.1``); None: the host.

    Raises:
        InputError: a file is unreadable or not PEM, ``cert`` without ``key`` (or the
            reverse), or the key does not belong to the certificate.
    """

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None
    _pem: dict[str, bytes | None] = field(default_factory=dict, init=False, repr=False,
                                          compare=False)

    def __post_init__(self) -> None:
        for name in ("ca", "cert", "key"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if (self.cert is None) != (self.key is None):
            raise InputError("a client certificate needs its key: give both --tls-cert and "
                             "--tls-key")
        if self.ca is not None:
            pem = _read(self.ca, "CA certificate")
            try:
                ssl.create_default_context(cadata=pem.decode("ascii", errors="replace"))
            except (ssl.SSLError, ValueError):
                raise InputError("not a PEM CA certificate", self.ca) from None
            self._pem["ca"] = pem
        if self.cert is not None and self.key is not None:
            self._pem["cert"] = _read(self.cert, "client certificate")
            self._pem["key"] = _read(self.key, "client key")
            try:
                ssl.create_default_context().load_cert_chain(self.cert, self.key)
            except ssl.SSLError as exc:
                raise InputError(f"the key {self.key} does not belong to this certificate, or "
                                 f"one of them is not PEM ({exc.reason or exc})",
                                 self.cert) from None
        if self.server_name is not None and not self.server_name.strip():
            raise InputError("the TLS server name must not be empty")

    @property
    def mutual(self) -> bool:
        """A client certificate is offered."""
        return self.cert is not None

    def grpc_client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``tritonclient.grpc.InferenceServerClient``."""
        quiet_grpc()
        import grpc

        creds = grpc.ssl_channel_credentials(root_certificates=self._pem.get("ca"),
                                             private_key=self._pem.get("key"),
                                             certificate_chain=self._pem.get("cert"))
        kwargs: dict[str, Any] = {"creds": creds}
        if self.server_name:
            kwargs["channel_args"] = [*DEFAULT_CHANNEL_ARGS,
                                      ("grpc.ssl_target_name_override", self.server_name)]
        return kwargs


#: (substring of gRPC's message, cause). First match wins; each never passes by itself.
_TLS_CAUSES = (
    ("certificate has expired", "the server's TLS certificate has expired"),
    ("certificate is not yet valid", "the server's TLS certificate is not valid yet"),
    ("unable to get local issuer certificate",
     "the server's TLS certificate is not signed by the CA given (--tls-ca)"),
    ("self-signed certificate", "the server's TLS certificate is self-signed and not the CA "
                                "given (--tls-ca)"),
    ("Hostname Verification Check failed",
     "the server's TLS certificate does not name the host connected to (--tls-server-name "
     "sets the name to expect)"),
    ("CERTIFICATE_VERIFY_FAILED", "the server's TLS certificate was refused"),
    ("WRONG_VERSION_NUMBER", "TLS was asked for (--tls-ca), but the server speaks plain text"),
)


def connection_failure(message: str, tls: ClientTls | None) -> str | None:
    """The cause of a connection that failed for a reason that will not pass (TLS set-up),
    as one line; None for other failures (refused, timed out, reset: these may pass).

    Args:
        message: gRPC's message (tritonclient's ``exc.message()``).
        tls: the client's TLS settings (None: plain text), to tell the causes of a
            connection the server closed during set-up.
    """
    for needle, cause in _TLS_CAUSES:
        if needle in message:
            return cause
    if "failed to connect to all addresses" in message and "Socket closed" in message:
        if tls is None:
            return ("the server closed the connection during set-up: it expects TLS "
                    "(give --tls-ca)")
        if not tls.mutual:
            return ("the server closed the connection during TLS set-up: it expects a client "
                    "certificate (mutual TLS: --tls-cert and --tls-key)")
        return ("the server closed the connection during TLS set-up: it did not accept the "
                "client certificate (not signed by its CA, or not for client use)")
    return None
