"""Allocator settings: applied in this process, passed to the server's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from exatrkx.core.allocator import AllocatorSettings, allocator_env, is_glibc, tune_allocator
from exatrkx.serve.launcher import ServerConfig, TritonServer

needs_glibc = pytest.mark.skipif(not is_glibc(), reason="the settings are glibc's")


@needs_glibc
def test_glibc_accepts_the_settings_and_a_second_call() -> None:
    assert tune_allocator() is True
    assert tune_allocator(AllocatorSettings(mmap_threshold=1 << 20)) is True
    assert tune_allocator() is True


@needs_glibc
def test_environment_keeps_an_operators_own_values() -> None:
    s = AllocatorSettings(mmap_threshold=1 << 21, trim_threshold=1 << 22, top_pad=1 << 23)
    env = allocator_env(s, environ={})
    assert env == {"MALLOC_MMAP_THRESHOLD_": str(1 << 21),
                   "MALLOC_TRIM_THRESHOLD_": str(1 << 22), "MALLOC_TOP_PAD_": str(1 << 23)}
    kept = allocator_env(s, environ={"MALLOC_TOP_PAD_": "0"})
    assert "MALLOC_TOP_PAD_" not in kept and len(kept) == 2


@needs_glibc
def test_server_environment_carries_the_settings(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.setenv("MALLOC_TOP_PAD_", "4096")
    server = TritonServer(tmp_path, ServerConfig(env={"MALLOC_MMAP_THRESHOLD_": "65536"}))
    env = server.environment()
    assert env["MALLOC_TRIM_THRESHOLD_"] == str(AllocatorSettings().trim_threshold)
    assert env["MALLOC_TOP_PAD_"] == "4096"          # the operator's value
    assert env["MALLOC_MMAP_THRESHOLD_"] == "65536"  # the server config's value


@needs_glibc
def test_operators_can_keep_glibcs_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXATRKX_MALLOC", "default")
    assert tune_allocator() is False
    assert allocator_env() == {}
    assert allocator_env(environ={"EXATRKX_MALLOC": "default"}) == {}
