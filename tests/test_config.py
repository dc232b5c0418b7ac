"""Pipeline settings validate on construction; unknown keys are named, not dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from exatrkx.config import EmbedConfig, PipelineConfig, SelectionConfig
from exatrkx.core.models import build_models, load_models, save_models
from exatrkx.errors import InputError


def test_round_trip() -> None:
    cfg = PipelineConfig(radius=0.1, label_method="components",
                         selection=SelectionConfig(min_pt=0.5))
    assert PipelineConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(("data", "message"), [
    ({"radius": 0.1, "radious": 0.2}, "unknown pipeline setting 'radious'"),
    ({"embed": {"hidden": 8, "hiden": 8}}, "embed.hiden"),
    ({"selection": 0.4}, "must be a mapping"),
    ({"label_method": "walk"}, "label_method must be one of"),
    ({"max_neighbours": 0}, "max_neighbours must be a positive integer"),
    ({"gnn_cut": 1.5}, "gnn_cut"),
    ({"radius": "wide"}, "radius"),
    ({"embed": {"activation": "gelu"}}, "embed.activation"),
    ({"selection": {"min_pt": -1}}, "selection.min_pt"),
    ({"build_method": "knn"}, "build_method must be one of"),
    ({"build_method": "layer_pairs"}, "needs embed.kind 'layers'"),
    ({"embed": {"kind": "layers"}}, "out_dim must be 4"),
    ({"layers": {"boxes": [[1, 0, 0, 1]]}}, "lo <= hi"),
    ({"layers": {"boxes": [[0, 1, 0, 1]], "pairs": [[0, 1, 0, 1, 0, 1]]}}, "out of range"),
    ({"layers": {"boxes": [[0, 1, 0, 1]], "pairs": [[0, 0, 1, 0, 0, 1]]}}, "lo > hi"),
    ({"layers": {"boxes": [[0, 1, 0, 1]], "pairs": [[0, 0, 0, 1]]}}, "each must be"),
    ({"layers": {"boxes": "wide"}}, "lists of numbers"),
])
def test_bad_settings_are_named(data: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        PipelineConfig.from_dict(data)


def test_construction_validates() -> None:
    with pytest.raises(InputError, match=r"embed\.out_dim"):
        EmbedConfig(out_dim=0)
    with pytest.raises(InputError, match="in_dim"):
        PipelineConfig(embed=EmbedConfig(in_dim=4))


def test_a_weights_folder_with_a_typo_is_refused(tmp_path: Path) -> None:
    cfg = PipelineConfig(max_neighbours=8)
    folder = save_models(build_models(cfg), cfg, tmp_path / "w")
    meta = (folder / "metadata.json").read_text()
    (folder / "metadata.json").write_text(meta.replace('"gnn_cut"', '"gnn_cutt"'))
    with pytest.raises(InputError, match="gnn_cutt"):
        load_models(folder)


def test_a_layer_map_survives_the_weights_file(tmp_path: Path) -> None:
    from exatrkx.config import LayerMapConfig

    layers = LayerMapConfig(boxes=((29.0, 31.0, -500.0, 500.0), (69.0, 71.0, -500.0, 500.0)),
                            pairs=((0, 1, -0.01, 0.02, -5.0, 6.0),))
    cfg = PipelineConfig(embed=EmbedConfig(kind="layers", out_dim=4),
                         build_method="layer_pairs", layers=layers)
    folder = save_models(build_models(cfg), cfg, tmp_path / "w")
    _, loaded = load_models(folder)
    assert loaded == cfg
    assert loaded.layers.pairs[0][:2] == (0, 1)
