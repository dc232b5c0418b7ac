"""Certificates: read what a PEM file says, and make a throw-away test PKI.

:func:`certificate_info` reads a certificate's validity, names and usages (the server checks
its own certificate before starting Triton with it). :func:`make_test_pki` writes a small
certificate authority and the certificates the TLS tests and benchmarks need (never for
production: the keys are unencrypted files)::

    python -m exatrkx.util.pki OUTDIR

Files written by :func:`make_test_pki` (PEM, keys mode 0600, P-256):

=====================  =================================================================
``ca``                 the trusted CA
``server``             server certificate, SAN ``IP:127.0.0.1, DNS:localhost``, by ``ca``
``client``             client certificate (extended key usage clientAuth), by ``ca``
``expired``            server certificate (same names) valid 2020-01-01..2020-01-02
``wronghost``          server certificate for ``DNS:wrong.example.invalid`` only
``other-ca``           a second CA that clients do not trust
``unknown``            server certificate (same names) signed by ``other-ca``
``rogue-client``       client certificate signed by ``other-ca``
=====================  =================================================================
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path

#: Names of the test server certificates.
TEST_HOSTS = ("127.0.0.1", "localhost")
#: name -> (issuer, common name, SAN entries, usage, not before, not after); None: now..+days
_LEAVES: dict[str, tuple[str, str, tuple[str, ...], str, dt.datetime | None,
                         dt.datetime | None]] = {
    "server": ("ca", "exatrkx-triton", TEST_HOSTS, "server", None, None),
    "client": ("ca", "exatrkx-client", (), "client", None, None),
    "expired": ("ca", "exatrkx-triton-expired", TEST_HOSTS, "server",
                dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
                dt.datetime(2020, 1, 2, tzinfo=dt.timezone.utc)),
    "wronghost": ("ca", "wrong.example.invalid", ("wrong.example.invalid",), "server", None,
                  None),
    "unknown": ("other-ca", "exatrkx-triton-unknown-ca", TEST_HOSTS, "server", None, None),
    "rogue-client": ("other-ca", "rogue-client", (), "client", None, None),
}
_CAS = {"ca": "exatrkx test CA", "other-ca": "untrusted test CA"}


@dataclass(frozen=True)
class CertificateInfo:
    """What a certificate says.

    Attributes:
        subject: its subject, RFC 4514.
        not_before, not_after: validity (UTC).
        names: DNS names and IP addresses of its subject alternative names.
        is_ca: a CA certificate.
        server_auth, client_auth: usable for a TLS server / client (no extended key usage
            extension allows both).
    """

    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    names: tuple[str, ...]
    is_ca: bool
    server_auth: bool
    client_auth: bool

    def expired(self, now: dt.datetime | None = None) -> bool:
        return (now or dt.datetime.now(dt.timezone.utc)) > self.not_after

    def not_yet_valid(self, now: dt.datetime | None = None) -> bool:
        return (now or dt.datetime.now(dt.timezone.utc)) < self.not_before


def certificate_info(path: str | Path) -> CertificateInfo:
    """The first certificate of a PEM file.

    Raises:
        OSError: unreadable; ValueError: not a PEM certificate.
    """
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        eku = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        server_auth = ExtendedKeyUsageOID.SERVER_AUTH in eku
        client_auth = ExtendedKeyUsageOID.CLIENT_AUTH in eku
    except x509.ExtensionNotFound:
        server_auth = client_auth = True
    return CertificateInfo(cert.subject.rfc4514_string(), cert.not_valid_before_utc,
                           cert.not_valid_after_utc, tuple(names), is_ca, server_auth,
                           client_auth)


def make_test_pki(outdir: str | Path, days: int = 30) -> Path:
    """Write the test CA and certificates (see the module docstring) into ``outdir``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)

    def write(name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        key_path = out / f"{name}.key"
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        os.chmod(key_path, 0o600)
        (out / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def name_of(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    cas = {}
    for ca_name, cn in _CAS.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name_of(cn)).issuer_name(name_of(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                             False, False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        cas[ca_name] = (key, cert)
        write(ca_name, key, cert)
    for leaf, (issuer, cn, hosts, usage, start, end) in _LEAVES.items():
        ca_key, ca_cert = cas[issuer]
        key = ec.generate_private_key(ec.SECP256R1())
        eku = (ExtendedKeyUsageOID.SERVER_AUTH if usage == "server"
               else ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (x509.CertificateBuilder().subject_name(name_of(cn))
                   .issuer_name(ca_cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start or now - dt.timedelta(minutes=5))
                   .not_valid_after(end or now + dt.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                   .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       ca_key.public_key()), critical=False))
        if hosts:
            entries: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    entries.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    entries.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(entries), False)
        write(leaf, key, builder.sign(ca_key, hashes.SHA256()))
    return out


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - a helper command
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m exatrkx.util.pki OUTDIR", file=sys.stderr)
        return 2
    out = make_test_pki(args[0])
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
