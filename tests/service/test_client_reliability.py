"""Client retry settings and error classes, without a server."""

from __future__ import annotations

import random

import numpy as np
import pytest

from exatrkx.contract import API_KEY_ENV, API_KEY_HEADER, GRPC_API_KEY_HEADER
from exatrkx.errors import (
    InputError,
    RejectedInput,
    RemoteError,
    ServerFailure,
    ServerUnavailable,
)
from exatrkx.service.transport import ClientConfig, Transport, is_transient, remote_error


def test_defaults_and_checks() -> None:
    cfg = ClientConfig()
    assert cfg.timeout_s == 60.0 and cfg.retries == 2
    for bad in ({"timeout_s": 0}, {"retries": -1}, {"backoff_s": -1.0},
                {"backoff_s": 10.0, "max_backoff_s": 1.0}):
        with pytest.raises(InputError):
            ClientConfig(**bad)  # type: ignore[arg-type]


def test_backoff_doubles_up_to_the_cap() -> None:
    cfg = ClientConfig(backoff_s=0.5, max_backoff_s=3.0)
    rng = random.Random(0)
    waits = [cfg.backoff(i, rng) for i in range(6)]
    for i, wait in enumerate(waits):
        base = min(3.0, 0.5 * 2 ** i)
        assert base / 2 <= wait <= base


@pytest.mark.parametrize(("status", "message", "transient"), [
    ("StatusCode.UNAVAILABLE", "failed to connect to all addresses", True),
    ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", True),
    ("StatusCode.INTERNAL", "Stub process 'x' is not healthy.", True),
    ("StatusCode.INVALID_ARGUMENT", "FEATURES is empty", False),
    ("StatusCode.NOT_FOUND", "no model", False),
    ("StatusCode.UNAVAILABLE", "This protocol is restricted, expecting header", False),
    ("[403]", "This API is restricted", False),
    ("[400]", "unexpected shape", False),
    ("[500]", "Stub process is not healthy", True),
    (None, "connection reset", True),
])
def test_which_errors_are_retried(status: str | None, message: str, transient: bool) -> None:
    assert is_transient(status, message) is transient


def test_remote_error_kinds() -> None:
    assert RemoteError("x").transient is False
    gone = RemoteError("x", unreachable=True)
    assert gone.transient and gone.unreachable
    # a server outage is not bad input: exit code 3, not 2
    assert not isinstance(gone, InputError)
    assert gone.exit_code == 3 and InputError("x").exit_code == 2


@pytest.mark.parametrize(("status", "message", "kind", "exit_code", "transient"), [
    ("StatusCode.INVALID_ARGUMENT", "FEATURES is empty", RejectedInput, 2, False),
    ("[400]", "unexpected shape", RejectedInput, 2, False),
    ("StatusCode.UNAVAILABLE", "failed to connect to all addresses", ServerUnavailable, 3,
     True),
    ("StatusCode.UNAVAILABLE", "This protocol is restricted, expecting header",
     ServerUnavailable, 3, False),
    ("StatusCode.INTERNAL", "Stub process 'x' is not healthy.", ServerFailure, 3, True),
    ("StatusCode.NOT_FOUND", "no model", ServerFailure, 3, False),
])
def test_triton_errors_map_to_the_package_errors(status: str, message: str, kind: type,
                                                  exit_code: int, transient: bool) -> None:
    error = remote_error("model", status, message)
    assert type(error) is kind
    assert error.exit_code == exit_code
    assert message in str(error)
    assert getattr(error, "transient", False) is transient


def test_key_from_config_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "from-the-environment")
    assert ClientConfig().key == "from-the-environment"
    assert ClientConfig(api_key="given-key").key == "given-key"
    assert ClientConfig(api_key="").key is None
    with Transport(ClientConfig(url="127.0.0.1:1")) as grpc:
        assert grpc.headers == {GRPC_API_KEY_HEADER: "from-the-environment"}
    with Transport(ClientConfig(url="127.0.0.1:1", protocol="http")) as http:
        assert http.headers == {API_KEY_HEADER: "from-the-environment"}
    monkeypatch.delenv(API_KEY_ENV)
    with Transport(ClientConfig(url="127.0.0.1:1")) as plain:
        assert plain.headers is None


def test_unreachable_server_after_retries() -> None:
    from exatrkx.serve import free_port

    cfg = ClientConfig(url=f"127.0.0.1:{free_port()}", retries=2, backoff_s=0.01,
                       timeout_s=5)
    with Transport(cfg) as transport:
        with pytest.raises(RemoteError) as info:
            transport.infer("exatrkx", {"FEATURES": np.zeros((3, 3))},
                            ["LABELS"])
        assert info.value.unreachable
        assert transport.resent == 2
