"""The shipped ``pu200`` weights: selected by name, the layer-pairs pipeline, made by the
recorded recipe; the default set stays the one without pileup."""

from __future__ import annotations

from exatrkx.core.models import (
    load_models,
    read_metadata,
    resolve_weights,
    shipped_weight_sets,
)


def test_pu200_is_a_shipped_set_of_the_layer_pairs_build() -> None:
    assert "pu200" in shipped_weight_sets()
    _, config = load_models("pu200")
    assert config.build_method == "layer_pairs"
    assert len(config.layers.pairs) > 0
    meta = read_metadata(resolve_weights("pu200"))
    assert meta["made_by"] == "exatrkx train --recipe pu200"
    _, default = load_models(None)
    assert default.build_method == "radius"

