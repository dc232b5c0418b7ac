"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from exatrkx.io.shared import hnl_events_dir


@pytest.fixture(scope="session")
def shared_hnl_dir() -> Path:
    """The shared real HNL events; tests using it skip when the folder is absent."""
    path = hnl_events_dir()
    if path is None:
        pytest.skip("../shared/data/hnl-lrt-100 is absent")
    return path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA and certificates (see :func:`exatrkx.util.pki.make_test_pki`)."""
    from exatrkx.util.pki import make_test_pki

    return make_test_pki(tmp_path_factory.mktemp("pki"))
