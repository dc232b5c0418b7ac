"""``exatrkx serve``'s options reach the repository it writes."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.serve import foreground

runner = CliRunner()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """``serve_forever`` replaced by a recorder of its arguments."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(foreground, "serve_forever",
                        lambda *args, **kwargs: calls.append(args) or 0)
    return calls


def test_threads_instances_and_batching_go_to_the_repository(
        started: list[tuple[Any, ...]]) -> None:
    res = runner.invoke(app, ["serve", "--threads", "2", "--instances", "3", "--no-batching"])
    assert res.exit_code == 0, res.output
    repo_config = started[0][3]
    assert (repo_config.torch_threads, repo_config.instances,
            repo_config.dynamic_batching) == (2, 3, False)


def test_the_repository_defaults_stay_without_the_options(
        started: list[tuple[Any, ...]]) -> None:
    from exatrkx.serve import RepositoryConfig

    assert runner.invoke(app, ["serve"]).exit_code == 0
    assert started[0][3] == RepositoryConfig()


def test_negative_threads_are_refused(started: list[tuple[Any, ...]]) -> None:
    res = runner.invoke(app, ["serve", "--threads", "-1"])
    assert res.exit_code == 2
    assert "torch_threads must be >= 0" in res.output
    assert started == []


def test_device_goes_to_the_repository_and_an_unknown_one_is_refused(
        started: list[tuple[Any, ...]]) -> None:
    assert runner.invoke(app, ["serve", "--device", "cuda"]).exit_code == 0
    assert started[0][3].device == "cuda"
    res = runner.invoke(app, ["serve", "--device", "tpu"])
    assert res.exit_code == 2
    assert "device must be 'cpu' or 'cuda'" in res.output
    assert len(started) == 1
