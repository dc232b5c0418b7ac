"""Event displays: PNGs that exist, decode, and show what they claim."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from exatrkx.core.features import features_from_xyz
from exatrkx.errors import InputError
from exatrkx.io import Event
from exatrkx.physics.display import _layers, _on_layers, plot_event, plot_tracks

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The generic detector's layers as ACTS builds them (what the display draws).
BARREL_LAYERS, ENDCAP_DISKS = _layers()


def helix_event(n_particles: int = 25, n_noise: int = 40, seed: int = 1) -> Event:
    """Charged particles from the origin in a 2 T field, hit on the generic detector's layers."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[float, float, float, int]] = []
    for pid in range(1, n_particles + 1):
        pt, eta = rng.uniform(0.6, 8.0), rng.uniform(-2.5, 2.5)
        phi0, q, z0 = rng.uniform(-np.pi, np.pi), rng.choice([-1, 1]), rng.normal(0, 30)
        radius = pt / (0.3 * 2.0) * 1000.0  # mm
        for r_layer, half in BARREL_LAYERS:
            if r_layer >= 2 * radius:
                break
            turn = np.arcsin(r_layer / (2 * radius))
            z = z0 + 2 * radius * turn * np.sinh(eta)
            if abs(z) <= half:
                phi = phi0 - q * turn
                rows.append((r_layer * np.cos(phi), r_layer * np.sin(phi), z, pid))
        for z_disk, r0, r1 in ENDCAP_DISKS:
            s = (np.sign(eta) * z_disk - z0) / np.sinh(eta)
            if 0 < s < np.pi * radius:
                r = 2 * radius * np.sin(s / (2 * radius))
                if r0 <= r <= r1:
                    phi = phi0 - q * s / (2 * radius)
                    rows.append((r * np.cos(phi), r * np.sin(phi), np.sign(eta) * z_disk, pid))
    for _ in range(n_noise):
        r_layer, half = BARREL_LAYERS[rng.integers(len(BARREL_LAYERS))]
        phi = rng.uniform(-np.pi, np.pi)
        rows.append((r_layer * np.cos(phi), r_layer * np.sin(phi), rng.uniform(-half, half), 0))
    xyz = np.array([row[:3] for row in rows])
    pid = np.array([row[3] for row in rows], dtype=np.int64)
    n = len(rows)
    hit_id = np.arange(1, n + 1, dtype=np.int64)
    hits = pd.DataFrame({"hit_id": hit_id, "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                         "volume_id": 8, "layer_id": 2, "module_id": 1})
    particles = pd.DataFrame({"particle_id": np.arange(1, n_particles + 1), "particle_type": 211,
                              "vx": 0.0, "vy": 0.0, "vz": 0.0, "px": 1.0, "py": 0.0, "pz": 0.0,
                              "q": 1, "nhits": 1})
    truth = pd.DataFrame({"hit_id": hit_id, "particle_id": pid, "tx": xyz[:, 0],
                          "ty": xyz[:, 1], "tz": xyz[:, 2], "tpx": 1.0, "tpy": 0.0, "tpz": 0.0,
                          "weight": 1.0 / n})
    return Event.from_tables("event000000042", hits, particles, truth)


def feature_event(n: int = 300, seed: int = 2) -> Event:
    rng = np.random.default_rng(seed)
    xyz = rng.normal(0, 300, (n, 3))
    return Event("evt_5", features_from_xyz(xyz), np.arange(n, dtype=np.int64))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (after checking the signature)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def distinct_hues(path: Path) -> int:
    """Number of distinct saturated colours (hue buckets) in the image."""
    rgb = imread(path)[..., :3].reshape(-1, 3)
    hi, lo = rgb.max(axis=1), rgb.min(axis=1)
    vivid = rgb[(hi - lo) > 0.25]
    if not len(vivid):
        return 0
    import colorsys

    hues = {round(colorsys.rgb_to_hsv(*p)[0] * 36) for p in vivid[:: max(1, len(vivid) // 4000)]}
    return len(hues)


def assert_sensible_png(path: Path) -> None:
    width, height = png_size(path)
    assert 1000 <= width <= 2500 and 500 <= height <= 1400
    assert 15_000 < path.stat().st_size < 3_000_000
    assert not list(path.parent.glob(f".{path.name}.*"))  # no temporary files left


def test_plot_event_with_truth(tmp_path: Path) -> None:
    ev = helix_event()
    out = plot_event(ev, tmp_path / "sub" / "truth.png")
    assert out == tmp_path / "sub" / "truth.png"
    assert_sensible_png(out)
    assert distinct_hues(out) >= 8  # one colour per particle


def test_plot_event_without_truth(tmp_path: Path) -> None:
    out = plot_event(feature_event(), tmp_path / "plain.png")
    assert_sensible_png(out)
    assert distinct_hues(out) <= 3  # a single colour


def test_plot_tracks(tmp_path: Path) -> None:
    ev = helix_event()
    labels = np.where(ev.particle_id == 0, -1, ev.particle_id * 7 % 11)
    out = plot_tracks(ev, labels, tmp_path / "tracks.png")
    assert_sensible_png(out)
    assert distinct_hues(out) >= 6
    all_unassigned = plot_tracks(ev, np.full(ev.num_hits, -1), tmp_path / "none.png")
    assert distinct_hues(all_unassigned) == 0


def test_plot_tracks_checks_labels(tmp_path: Path) -> None:
    ev = feature_event(10)
    with pytest.raises(ValueError, match="labels"):
        plot_tracks(ev, np.zeros(9, np.int64), tmp_path / "x.png")
    with pytest.raises(ValueError, match="integers"):
        plot_tracks(ev, np.zeros(10), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_and_degenerate_events(tmp_path: Path, n: int) -> None:
    same_point = Event("tiny", np.tile(np.float32([[0.1, 0.5, 0.0]]), (n, 1)),
                       np.arange(n, dtype=np.int64))
    assert_sensible_png(plot_event(same_point, tmp_path / "a.png"))
    assert_sensible_png(plot_tracks(same_point, np.zeros(n, np.int64), tmp_path / "b.png"))


def test_many_hits_stay_fast(tmp_path: Path) -> None:
    ev = feature_event(60_000)
    labels = np.arange(ev.num_hits) // 10
    assert_sensible_png(plot_tracks(ev, labels, tmp_path / "big.png"))


def test_guides_follow_the_data() -> None:
    ev = helix_event()
    r = np.hypot(ev.hits["x"], ev.hits["y"]).to_numpy()
    assert _on_layers(r, ev.hits["z"].to_numpy())
    rng = np.random.default_rng(0)
    assert not _on_layers(rng.uniform(0, 1000, 500), rng.uniform(-3000, 3000, 500))
    assert not _on_layers(np.zeros(0), np.zeros(0))


def test_unwritable_output_is_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write PNG") as info:
        plot_event(feature_event(5), blocker / "out.png")
    assert "\n" not in str(info.value)


def test_no_pyplot_and_no_display(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from exatrkx.io import Event\n"
        "from exatrkx.physics.display import plot_event\n"
        "ev = Event('e', np.float32([[0.1, 0.2, 0.3]]), np.arange(1))\n"
        f"plot_event(ev, {str(tmp_path / 'p.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {"PATH": "/usr/bin:/bin", "MPLBACKEND": "TkAgg", "DISPLAY": ""}
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert png_size(tmp_path / "p.png")[0] > 0
