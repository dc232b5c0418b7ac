"""The detector as ACTS builds it: the generic (TrackML) detector's layers and ids."""

from __future__ import annotations

import numpy as np
import pytest

from exatrkx.sim.geometry import (
    Detector,
    join_geometry_id,
    layer_table,
    split_geometry_id,
    write_digitization_config,
)


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector()


def test_world_and_module_count(det: Detector) -> None:
    r_max, half_z = det.world
    assert r_max == pytest.approx(1028.5, abs=1.0) and half_z == pytest.approx(3001, abs=1)
    assert len(det.modules) == 18_728


@pytest.mark.parametrize(("volume", "radii", "half_length"), [
    (8, [32, 72, 116, 172], 491), (13, [260, 360, 500, 660], 1084), (17, [820, 1020], 1084)])
def test_barrel_layers(det: Detector, volume: int, radii: list[int], half_length: int) -> None:
    layers = det.layers[det.layers.volume_id == volume]
    assert layers["barrel"].all()
    assert list(layers["layer_id"]) == [2 * (i + 1) for i in range(len(radii))]
    np.testing.assert_allclose(layers["position"], radii, atol=0.2)
    np.testing.assert_allclose(layers["z_max"], half_length, atol=1.0)


def test_endcaps_mirror_each_other(det: Detector) -> None:
    table = det.layers
    for neg, pos, zs in ((7, 9, [600, 700, 820, 960, 1100, 1300, 1500]),
                         (12, 14, [1220, 1500, 1800, 2150, 2550, 2950])):
        minus, plus = table[table.volume_id == neg], table[table.volume_id == pos]
        assert not minus["barrel"].any() and not plus["barrel"].any()
        np.testing.assert_allclose(sorted(plus["position"]), zs, atol=2.0)
        np.testing.assert_allclose(sorted(-minus["position"]), zs, atol=2.0)
        # ACTS numbers the negative endcap's layers from the outside in
        assert minus.sort_values("layer_id")["position"].iloc[0] < -zs[-1] + 2.0
    assert layer_table().equals(Detector().layers)


def test_geometry_ids_round_trip(det: Detector) -> None:
    gid = det.modules["geometry_id"].to_numpy()
    volume, layer, module = split_geometry_id(gid)
    assert np.array_equal(join_geometry_id(volume, layer, module), gid)
    assert set(np.unique(volume)) == {7, 8, 9, 12, 13, 14, 16, 17, 18}
    assert (module >= 1).all() and (layer % 2 == 0).all()


def test_noise_points_lie_on_modules(det: Detector) -> None:
    gids, xyz = det.random_points(300, np.random.default_rng(5))
    mods = det.modules.set_index("geometry_id").loc[gids]
    r = np.hypot(xyz[:, 0], xyz[:, 1])
    assert ((r >= mods["r_lo"].to_numpy() - 1e-6) & (r <= mods["r_hi"].to_numpy() + 1e-6)).all()
    assert ((xyz[:, 2] >= mods["z_lo"].to_numpy() - 1e-6)
            & (xyz[:, 2] <= mods["z_hi"].to_numpy() + 1e-6)).all()
    # uniform over the area: the big strip layers get most of them
    share_pixel = np.isin(split_geometry_id(gids)[0], (7, 8, 9)).mean()
    assert share_pixel < 0.2


def test_digitization_config_gives_pitch_over_sqrt12(tmp_path) -> None:
    import json

    doc = json.loads(write_digitization_config(tmp_path / "d.json").read_text())
    entries = {e["volume"]: e["value"]["smearing"] for e in doc["entries"]}
    assert sorted(entries) == [7, 8, 9, 12, 13, 14, 16, 17, 18]
    assert entries[8][0]["stddev"] == pytest.approx(0.05 / np.sqrt(12))
    assert entries[17][1]["stddev"] == pytest.approx(10.8 / np.sqrt(12))
