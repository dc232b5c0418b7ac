"""TLS of the server's gRPC endpoint, with Triton's own options.

``exatrkx serve --tls-cert F --tls-key F [--tls-ca F]`` becomes::

    --grpc-use-ssl=true --grpc-server-cert=F --grpc-server-key=F
    [--grpc-use-ssl-mutual=true --grpc-root-cert=CA]     (mutual TLS: clients need a
                                                          certificate signed by CA)

Facts of Triton 2.51 this relies on (measured, see docs/security.md): ``--grpc-root-cert``
alone checks nothing (clients are only asked for a certificate with ``-mutual``); client
certificates need the ``clientAuth`` extended key usage; certificates are read at start (a
new one needs a restart); a bad file makes Triton exit seconds later with a misleading
"already in use" line. So the files are checked here first and a problem is bad input
(exit code 2) before Triton starts. Triton's HTTP endpoint has no TLS at all.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from exatrkx.errors import InputError
from exatrkx.util.pki import certificate_info


def _readable(path: Path, what: str) -> Path:
    path = Path(path).resolve()
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise InputError(f"cannot read the {what} ({exc.strerror or exc})", path) from None
    return path


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate, its key and, for mutual TLS, the CA of client certificates.

    Attributes:
        cert: PEM certificate (chain) of the server; its names must include the host
            clients connect to.
        key: PEM private key of ``cert``.
        ca: PEM CA certificate(s) that client certificates must chain to; given, clients
            without such a certificate are refused (mutual TLS).

    Raises:
        InputError: a file is unreadable or not PEM, the key does not belong to the
            certificate, the certificate has expired, is not valid yet or is not for
            servers, or ``ca`` holds no certificate.
    """

    cert: Path
    key: Path
    ca: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cert", _readable(self.cert, "server certificate"))
        object.__setattr__(self, "key", _readable(self.key, "server key"))
        if self.ca is not None:
            object.__setattr__(self, "ca", _readable(self.ca, "client CA certificate"))
        try:
            info = certificate_info(self.cert)
        except ValueError:
            raise InputError("not a PEM certificate", self.cert) from None
        now = dt.datetime.now(dt.timezone.utc)
        if info.expired(now):
            raise InputError(f"the server certificate expired on {info.not_after:%Y-%m-%d}",
                             self.cert)
        if info.not_yet_valid(now):
            raise InputError(f"the server certificate is valid only from "
                             f"{info.not_before:%Y-%m-%d %H:%M} UTC", self.cert)
        if not info.server_auth:
            raise InputError("the certificate is not for TLS servers (its extended key usage "
                             "lacks serverAuth)", self.cert)
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self.cert,
                                                                                self.key)
        except ssl.SSLError as exc:
            raise InputError(f"the key {self.key} does not belong to this certificate, or is "
                             f"not PEM ({exc.reason or exc})", self.cert) from None
        if self.ca is not None:
            try:
                ssl.create_default_context(cafile=str(self.ca))
            except ssl.SSLError:
                raise InputError("not a PEM CA certificate", self.ca) from None

    @property
    def mutual(self) -> bool:
        """Clients must show a certificate signed by :attr:`ca`."""
        return self.ca is not None

    @property
    def names(self) -> tuple[str, ...]:
        """The host names and addresses the certificate is valid for."""
        return certificate_info(self.cert).names

    def args(self) -> list[str]:
        """The ``tritonserver`` arguments."""
        flags = ["--grpc-use-ssl=true", f"--grpc-server-cert={self.cert}",
                 f"--grpc-server-key={self.key}"]
        if self.ca is not None:  # --grpc-root-cert alone would check nothing
            flags += ["--grpc-use-ssl-mutual=true", f"--grpc-root-cert={self.ca}"]
        return flags
