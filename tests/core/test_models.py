"""Weights by folder or by the name of a shipped set."""

from __future__ import annotations

from pathlib import Path

import pytest

from exatrkx.config import PipelineConfig
from exatrkx.core.models import (
    build_models,
    default_weights_dir,
    load_models,
    resolve_weights,
    save_models,
    shipped_weight_sets,
)
from exatrkx.errors import InputError


def test_names_resolve_to_shipped_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_weights(None) == default_weights_dir()
    assert resolve_weights("default") == default_weights_dir()
    shipped = tmp_path / "weights"
    cfg = PipelineConfig(max_neighbours=4)
    save_models(build_models(cfg), cfg, shipped)
    save_models(build_models(cfg), cfg, shipped / "pu200")
    monkeypatch.setattr("exatrkx.core.models.default_weights_dir", lambda: shipped)
    assert resolve_weights("pu200") == shipped / "pu200"
    assert shipped_weight_sets() == ["default", "pu200"]
    _, loaded = load_models("pu200")
    assert loaded.max_neighbours == 4
    folder = tmp_path / "pu200"  # a folder of that name in the working directory wins
    save_models(build_models(cfg), cfg, folder)
    monkeypatch.chdir(tmp_path)
    assert resolve_weights("pu200") == Path("pu200")


def test_an_unknown_name_names_the_shipped_sets() -> None:
    with pytest.raises(InputError, match="shipped set"):
        load_models("no-such-set")
