"""The test PKI and what a certificate says (no server)."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest

from exatrkx.util.pki import TEST_HOSTS, certificate_info


def test_the_test_pki(pki: Path) -> None:
    names = {"ca", "server", "client", "expired", "wronghost", "other-ca", "unknown",
             "rogue-client"}
    assert {p.stem for p in pki.glob("*.crt")} == names
    assert {p.stem for p in pki.glob("*.key")} == names
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in pki.glob("*.key"))
    ca = certificate_info(pki / "ca.crt")
    assert ca.is_ca and not ca.expired()
    server = certificate_info(pki / "server.crt")
    assert set(server.names) == set(TEST_HOSTS)
    assert server.server_auth and not server.client_auth and not server.is_ca
    client = certificate_info(pki / "client.crt")
    assert client.client_auth and not client.server_auth and client.names == ()
    expired = certificate_info(pki / "expired.crt")
    assert expired.expired() and expired.not_after.year == 2020
    assert not expired.not_yet_valid()
    assert certificate_info(pki / "wronghost.crt").names == ("wrong.example.invalid",)
    assert certificate_info(pki / "unknown.crt").subject != server.subject
    future = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    assert server.not_yet_valid(future)


def test_certificate_info_refuses_what_is_no_certificate(pki: Path) -> None:
    with pytest.raises(ValueError):
        certificate_info(pki / "server.key")
    with pytest.raises(OSError):
        certificate_info(pki / "nope.crt")
