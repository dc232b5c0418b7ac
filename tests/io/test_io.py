"""Event I/O: TrackML / ACTS / feature CSVs, exact round trips, and bad input."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exatrkx.core.features import check_features, features_from_xyz, xyz_from_features
from exatrkx.errors import InputError
from exatrkx.io import Event, event_sources, iter_events, read_event, write_trackml, write_tracks
from exatrkx.io.event import HIT_COLUMNS, PARTICLE_COLUMNS, TRUTH_COLUMNS
from exatrkx.io.readers import read_feature_csv, read_spacepoint_csv, read_trackml
from exatrkx.io.shared import shared_data_dir
from exatrkx.io.writers import atomic_write_csv, event_name

# Values that a lossy float parser or writer would change.
AWKWARD_FLOATS = [5e-324, -0.0, 1.7976931348623157e308, 0.1, 1 / 3, 1e-300, 2.0**-1074 * 3,
                  123456789.12345679, -2.2250738585072014e-308, 9007199254740993.0]
BIG_PARTICLE_ID = 2**62 + 12345  # not representable in float64


def make_tables(n_particles: int = 6, n_noise: int = 5,
                seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Small TrackML hits/particles/truth tables with canonical dtypes (rows aligned)."""
    rng = np.random.default_rng(seed)
    radii = np.array([32.0, 72.0, 116.0, 172.0, 260.0, 360.0])
    pids = rng.integers(1, 2**60, n_particles) * 4
    pids[0] = BIG_PARTICLE_ID
    xs, ys, zs, owners = [], [], [], []
    for pid in pids:
        phi0, theta = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, np.pi - 0.3)
        for r in radii:
            phi = phi0 + rng.normal(0, 0.01)
            xs.append(r * np.cos(phi))
            ys.append(r * np.sin(phi))
            zs.append(r / np.tan(theta))
            owners.append(pid)
    for _ in range(n_noise):
        r, phi = rng.choice(radii), rng.uniform(-np.pi, np.pi)
        xs.append(r * np.cos(phi))
        ys.append(r * np.sin(phi))
        zs.append(rng.uniform(-400, 400))
        owners.append(0)
    n = len(xs)
    hit_id = rng.permutation(n).astype(np.int64) + 1
    hits = pd.DataFrame({
        "hit_id": hit_id, "x": np.array(xs), "y": np.array(ys), "z": np.array(zs),
        "volume_id": rng.integers(7, 10, n), "layer_id": rng.integers(1, 5, n) * 2,
        "module_id": rng.integers(1, 3000, n),
    })
    m = len(pids)
    particles = pd.DataFrame({
        "particle_id": pids.astype(np.int64), "particle_type": rng.choice([11, -13, 211], m),
        "vx": rng.normal(0, 0.01, m), "vy": rng.normal(0, 0.01, m), "vz": rng.normal(0, 50, m),
        "px": rng.normal(0, 2, m), "py": rng.normal(0, 2, m), "pz": rng.normal(0, 5, m),
        "q": rng.choice([-1, 1], m), "nhits": np.full(m, len(radii)),
    })
    k = min(m, len(AWKWARD_FLOATS))
    particles.loc[particles.index[:k], "vx"] = AWKWARD_FLOATS[:k]
    truth = pd.DataFrame({
        "hit_id": hit_id, "particle_id": np.array(owners, dtype=np.int64),
        "tx": hits["x"] + rng.normal(0, 1e-3, n), "ty": hits["y"], "tz": hits["z"],
        "tpx": rng.normal(0, 1, n), "tpy": rng.normal(0, 1, n), "tpz": rng.normal(0, 1, n),
        "weight": rng.uniform(0, 1e-4, n),
    })
    k = min(n, len(AWKWARD_FLOATS))
    truth.loc[truth.index[:k], "tpx"] = AWKWARD_FLOATS[:k]
    return hits, particles, truth


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns, dtypes and bit-identical values (so -0.0 differs from 0.0)."""
    assert list(a.columns) == list(b.columns)
    assert list(a.dtypes) == list(b.dtypes)
    assert len(a) == len(b)
    for col in a.columns:
        va, vb = a[col].to_numpy(), b[col].to_numpy()
        if va.dtype == np.float64:
            np.testing.assert_array_equal(va.view(np.int64), vb.view(np.int64), err_msg=col)
        else:
            np.testing.assert_array_equal(va, vb, err_msg=col)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def check_event(ev: Event) -> None:
    """The reader contract: finite float32 [N, 3] features, int64 [N] hit ids."""
    assert ev.features.dtype == np.float32
    assert ev.features.ndim == 2 and ev.features.shape[1] == 3
    assert np.isfinite(ev.features).all()
    assert ev.hit_id.dtype == np.int64 and ev.hit_id.shape == (ev.num_hits,)


@pytest.fixture
def event() -> Event:
    hits, particles, truth = make_tables()
    return Event.from_tables(event_name(7), hits, particles, truth)


# --------------------------------------------------------------------------- round trip

def test_trackml_round_trip_is_exact(event: Event, tmp_path: Path) -> None:
    prefix = write_trackml(event, tmp_path / "out")
    assert prefix == tmp_path / "out" / "event000000007"
    back = read_trackml(prefix)
    assert back.name == "event000000007"
    assert_same_table(event.hits, back.hits)
    assert_same_table(event.particles, back.particles)
    assert_same_table(event.truth, back.truth)
    assert list(back.hits.columns) == HIT_COLUMNS
    assert list(back.particles.columns) == PARTICLE_COLUMNS
    assert list(back.truth.columns) == TRUTH_COLUMNS
    np.testing.assert_array_equal(back.features, event.features)
    np.testing.assert_array_equal(back.hit_id, event.hit_id)
    assert back.has_truth
    assert BIG_PARTICLE_ID in back.particle_id
    # the written files are exactly what a second write gives
    again = write_trackml(back, tmp_path / "again")
    for part in ("hits", "particles", "truth"):
        first = (tmp_path / "out" / f"event000000007-{part}.csv").read_bytes()
        assert first == (again.parent / f"event000000007-{part}.csv").read_bytes()


def test_event_without_hits_round_trips(tmp_path: Path) -> None:
    hits, particles, truth = make_tables(n_particles=3, n_noise=0)
    particles["nhits"] = 0
    ev = Event.from_tables("event000000004", hits.iloc[:0], particles, truth.iloc[:0])
    assert ev.num_hits == 0
    back = read_event(write_trackml(ev, tmp_path))
    assert back.num_hits == 0 and back.features.shape == (0, 3) and back.has_truth
    assert_same_table(ev.particles, back.particles)
    assert list(back.hits.dtypes) == list(ev.hits.dtypes)
    assert list(back.truth.dtypes) == list(ev.truth.dtypes)
    spacepoints = write(tmp_path / "sp.csv", "measurement_id,x,y,z,var_r,var_z\n")
    assert read_event(spacepoints).features.shape == (0, 3)


def test_round_trip_keeps_extra_columns(tmp_path: Path) -> None:
    hits, particles, truth = make_tables(n_particles=2, n_noise=1)
    hits["cells"] = np.arange(len(hits), dtype=np.int64) % 4 + 1
    hits["charge"] = np.linspace(0.1, 3.3, len(hits))
    hits["tag"] = ["a", "b"] * (len(hits) // 2) + ["c"] * (len(hits) % 2)
    hits["maybe"] = np.where(np.arange(len(hits)) % 3 == 0, np.nan, 0.25)
    ev = Event.from_tables("event000000001", hits, particles, truth)
    back = read_event(write_trackml(ev, tmp_path))
    assert list(back.hits.columns) == [*HIT_COLUMNS, "cells", "charge", "tag", "maybe"]
    assert_same_table(ev.hits.drop(columns="tag"), back.hits.drop(columns="tag"))
    assert back.hits["tag"].tolist() == ev.hits["tag"].tolist()


def test_write_trackml_puts_standard_columns_first(tmp_path: Path) -> None:
    hits, particles, truth = make_tables(n_particles=1, n_noise=0)
    ev = Event.from_tables("event000000002", hits[HIT_COLUMNS[::-1]], particles, truth)
    write_trackml(ev, tmp_path)
    header = (tmp_path / "event000000002-hits.csv").read_text().splitlines()[0]
    assert header == ",".join(HIT_COLUMNS)


def test_write_trackml_errors(tmp_path: Path) -> None:
    ev = Event("e", np.zeros((1, 3), np.float32), np.zeros(1, np.int64))
    with pytest.raises(InputError, match="no hits table"):
        write_trackml(ev, tmp_path)
    hits, _, _ = make_tables(n_particles=1, n_noise=0)
    ev = Event.from_tables("event000000003", hits.drop(columns="module_id"))
    with pytest.raises(InputError, match="module_id"):
        write_trackml(ev, tmp_path)
    assert not list(tmp_path.iterdir())


def test_features_are_scaled_cylindrical_coordinates(event: Event) -> None:
    x, y, z = (event.hits[c].to_numpy() for c in "xyz")
    expected = np.stack([np.hypot(x, y) / 1000, np.arctan2(y, x) / np.pi, z / 1000], axis=1)
    np.testing.assert_array_equal(event.features, expected.astype(np.float32))
    np.testing.assert_allclose(xyz_from_features(event.features),
                               np.stack([x, y, z], axis=1), atol=1e-3)


def test_truth_rows_are_aligned_to_hits(event: Event, tmp_path: Path) -> None:
    prefix = write_trackml(event, tmp_path)
    truth_path = tmp_path / "event000000007-truth.csv"
    shuffled = event.truth.sample(frac=1.0, random_state=3)
    atomic_write_csv(shuffled, truth_path)
    back = read_event(prefix)
    assert_same_table(event.truth, back.truth)


def test_truth_or_particles_may_be_absent(event: Event, tmp_path: Path) -> None:
    prefix = write_trackml(event, tmp_path)
    (tmp_path / "event000000007-particles.csv").unlink()
    only_truth = read_event(prefix)
    assert only_truth.truth is not None and only_truth.particles is None
    assert not only_truth.has_truth
    (tmp_path / "event000000007-truth.csv").unlink()
    bare = read_event(prefix)
    assert bare.truth is None and bare.particle_id is None and not bare.has_truth
    np.testing.assert_array_equal(bare.features, event.features)


# --------------------------------------------------------------------------- read_event

def test_read_event_trackml_prefix_file_or_directory(event: Event, tmp_path: Path) -> None:
    prefix = write_trackml(event, tmp_path)
    paths = [prefix, str(prefix), tmp_path, *sorted(tmp_path.glob("*.csv"))]
    assert event_sources(tmp_path) == [prefix]
    for path in paths:
        ev = read_event(path)
        assert ev.name == "event000000007"
        np.testing.assert_array_equal(ev.features, event.features)
        np.testing.assert_array_equal(ev.hit_id, event.hit_id)
        assert ev.has_truth
        check_event(ev)


def test_read_acts_spacepoints(tmp_path: Path) -> None:
    xyz = np.array([[30.0, 40.0, -120.5], [0.0, -72.0, 13.25], [-100.0, 0.0, 0.0]])
    lines = ["measurement_id,x,y,z,var_r,var_z"]
    lines += [f"{10 + i},{x!r},{y!r},{z!r},0.0025,0.01" for i, (x, y, z) in enumerate(xyz)]
    path = write(tmp_path / "event000000001-spacepoint.csv", "\n".join(lines) + "\n")
    for ev in (read_event(path), read_spacepoint_csv(path)):
        check_event(ev)
        assert ev.name == "event000000001-spacepoint"
        np.testing.assert_array_equal(ev.hit_id, [10, 11, 12])
        np.testing.assert_array_equal(ev.features, features_from_xyz(xyz))
        np.testing.assert_allclose(ev.features[0], [0.05, np.arctan2(40, 30) / np.pi, -0.1205],
                                   rtol=1e-6)
        assert ev.truth is None and not ev.has_truth
    # a hits-style table under any name: hit_id stands in for measurement_id
    other = write(tmp_path / "hits_only.csv", "hit_id,x,y,z\n5,1,2,3\n")
    np.testing.assert_array_equal(read_event(other).hit_id, [5])


def test_read_synthetic_feature_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    values = np.stack([rng.uniform(0.03, 1.0, 50), rng.uniform(-1, 1, 50),
                       rng.uniform(-3, 3, 50)], axis=1)
    text = "\n".join(",".join(repr(v) for v in row) for row in values)
    path = write(tmp_path / "evt_3.csv", text)  # no final newline
    for ev in (read_event(path), read_feature_csv(path)):
        check_event(ev)
        assert ev.name == "evt_3"
        np.testing.assert_array_equal(ev.features, values.astype(np.float32))
        np.testing.assert_array_equal(ev.hit_id, np.arange(50))
        assert ev.truth is None


def test_feature_csv_tolerates_bom_crlf_blank_lines_and_spaces(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbf0.1, 0.5 ,-0.25\r\n\r\n  \r\n0.2,-0.5,1e-1\r\n\n"
    ev = read_event(write(tmp_path / "f.csv", content))
    np.testing.assert_array_equal(ev.features, np.float32([[0.1, 0.5, -0.25], [0.2, -0.5, 0.1]]))


def test_read_shared_in_e1000() -> None:
    base = shared_data_dir()
    if base is None or not (base / "in_e1000.csv").is_file():
        pytest.skip("../shared/data/in_e1000.csv is absent")
    path = base / "in_e1000.csv"
    ev = read_event(path)
    check_event(ev)
    assert ev.name == "in_e1000"
    raw = np.loadtxt(path, delimiter=",", dtype=np.float64)
    assert ev.num_hits == len(raw) > 300
    np.testing.assert_array_equal(ev.features, raw.astype(np.float32))
    assert (ev.features[:, 0] > 0).all()
    assert (np.abs(ev.features[:, 1]) <= 1).all()
    assert ev.truth is None and ev.particle_id is None
    assert event_sources(path) == [path]


# --------------------------------------------------------------------------- sources

def test_event_sources_natural_order_and_skips(event: Event, tmp_path: Path) -> None:
    for i in (10, 2, 1, 33, 100):
        write(tmp_path / f"evt_{i}.csv", "0.1,0.2,0.3\n")
    write_trackml(event, tmp_path)
    write(tmp_path / "evt_2-tracks.csv", "hit_id,track_id\n0,0\n")
    write(tmp_path / ".evt_0.csv", "0.1,0.2,0.3\n")
    write(tmp_path / "notes.txt", "not an event")
    (tmp_path / "sub.csv").mkdir()
    names = [p.name for p in event_sources(tmp_path)]
    assert names == ["event000000007", "evt_1.csv", "evt_2.csv", "evt_10.csv", "evt_33.csv",
                     "evt_100.csv"]
    events = list(iter_events(tmp_path))
    assert [e.name for e in events] == ["event000000007", "evt_1", "evt_2", "evt_10", "evt_33",
                                        "evt_100"]


def test_event_sources_of_file_and_prefix(event: Event, tmp_path: Path) -> None:
    prefix = write_trackml(event, tmp_path)
    assert event_sources(prefix) == [prefix]
    hits = tmp_path / "event000000007-hits.csv"
    assert event_sources(hits) == [hits]


def test_read_event_directory_with_several_events(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "0.1,0.2,0.3\n")
    write(tmp_path / "b.csv", "0.1,0.2,0.3\n")
    with pytest.raises(InputError, match="holds 2 events"):
        read_event(tmp_path)


# --------------------------------------------------------------------------- writing helpers

def test_write_tracks(event: Event, tmp_path: Path) -> None:
    labels = np.arange(event.num_hits) % 3 - 1
    path = write_tracks(event, labels, tmp_path)
    assert path.name == "event000000007-tracks.csv"
    df = pd.read_csv(path)
    np.testing.assert_array_equal(df["hit_id"], event.hit_id)
    np.testing.assert_array_equal(df["track_id"], labels)
    with pytest.raises(ValueError, match="labels"):
        write_tracks(event, labels[:-1], tmp_path)
    with pytest.raises(ValueError, match="labels"):
        write_tracks(event, np.int64(3), tmp_path)


def test_atomic_write_leaves_no_temp_and_normal_permissions(tmp_path: Path) -> None:
    atomic_write_csv(pd.DataFrame({"a": [1, 2]}), tmp_path / "sub" / "t.csv")
    reference = tmp_path / "sub" / "plain.csv"
    reference.write_text("a\n")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["plain.csv", "t.csv"]
    mode = stat.S_IMODE((tmp_path / "sub" / "t.csv").stat().st_mode)
    assert mode == stat.S_IMODE(reference.stat().st_mode)


def test_check_features() -> None:
    out = check_features(np.zeros((2, 3), np.float64))
    assert out.dtype == np.float32
    with pytest.raises(InputError, match=r"f\.csv:11:"):
        check_features(np.array([[0, 0, 0], [0, 0, np.nan]]), "f.csv", first_line=10)
    with pytest.raises(InputError, match=r"f\.csv:1:"):
        check_features(np.array([[1e39, 0, 0]]), "f.csv")
    with pytest.raises(InputError, match="shape"):
        check_features(np.zeros((2, 4)))
    with pytest.raises(InputError, match="numeric"):
        check_features(np.array([["a", "b", "c"]]))


def test_from_tables_errors() -> None:
    hits, particles, truth = make_tables(n_particles=1, n_noise=1)
    with pytest.raises(InputError, match="no row for hit_id"):
        Event.from_tables("e", hits, particles, truth.iloc[1:])
    with pytest.raises(InputError, match="appears twice"):
        Event.from_tables("e", pd.concat([hits, hits.iloc[:1]]), particles)
    with pytest.raises(InputError, match="appears twice"):
        Event.from_tables("e", hits, particles, pd.concat([truth, truth.iloc[:1]]))
    with pytest.raises(InputError, match="missing column"):
        Event.from_tables("e", hits.drop(columns="z"))


# --------------------------------------------------------------------------- bad input

def _raise(reader: Callable[[Path], Event], path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        reader(path)
    err = info.value
    assert "\n" not in str(err) and "\r" not in str(err)
    assert err.path == str(path)
    return err


FEATURE_CASES = [
    # (id, content, expected 1-based line or None, message fragment)
    ("truncated-row", "0.1,0.2,0.3\n0.4,0.5,0.6\n0.7,0.", 3, "truncated"),
    ("truncated-number", "0.1,0.2,0.3\n0.4,0.5,-", 2 + 0, "is not a number"),
    ("nan", "0.1,0.2,0.3\n\n\n0.4,nan,0.6\n", 4, "non-finite"),
    ("inf", "0.1,0.2,0.3\n0.4,0.5,-Infinity\n", 2, "non-finite"),
    ("float32-overflow", "0.1,0.2,0.3\n1e39,0.5,0.6\n", 2, "out of range"),
    ("four-columns", "0.1,0.2,0.3\n0.1,0.2,0.3,0.4\n", 2, "found 4"),
    ("two-columns-first", "0.1,0.2\n0.1,0.2,0.3\n", 1, "found 2"),
    ("empty-value", "0.1,,0.3\n", 1, "empty value"),
    ("header", "r,phi,z\n0.1,0.2,0.3\n", 1, "no header"),
    ("words", "0.1,0.2,0.3\n\n0.1,abc,0.3\n", 3, "'abc' is not a number"),
    ("crlf", "0.1,0.2,0.3\r\n\r\n0.1,0.2,x\r\n", 3, "is not a number"),
    ("cr-only", "0.1,0.2,0.3\r0.1,0.2,x\r", 2, "is not a number"),
    ("empty", "", None, "empty"),
    ("blank-only", "\n  \n\t\r\n", None, "empty"),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, "binary"),
    ("latin1", b"0.1,0.2,0.3\n0.1,0.2,0.3\ncaf\xe9,1,2\n", 3, "UTF-8"),
    ("quoted", '"0.1",0.2,0.3\n', 1, "is not a number"),
]


@pytest.mark.parametrize(("content", "line", "fragment"),
                         [c[1:] for c in FEATURE_CASES], ids=[c[0] for c in FEATURE_CASES])
def test_bad_feature_csv(tmp_path: Path, content: str | bytes, line: int | None,
                         fragment: str) -> None:
    path = write(tmp_path / "evt_1.csv", content)
    for reader in (read_event, read_feature_csv):
        err = _raise(reader, path)
        assert err.line == line, str(err)
        assert fragment in str(err)
        prefix = f"{path}:{line}: " if line is not None else f"{path}: "
        assert str(err).startswith(prefix)


HEADER = "measurement_id,x,y,z,var_r,var_z\n"
SPACEPOINT_CASES = [
    ("missing-column", "measurement_id,x,y,var_r\n1,2,3,4\n", 1, "missing column(s) z"),
    ("truncated", HEADER + "1,10,20,30,0,0\n2,10,20", 3, "truncated"),
    ("nan", HEADER + "1,10,20,30,0,0\n\n2,10,20,NaN,0,0\n", 4, "column 'z'"),
    ("inf", HEADER + "1,inf,20,30,0,0\n", 2, "column 'x'"),
    ("overflow", HEADER + "1,1e308,1e308,30,0,0\n", 2, "out of range"),
    ("duplicate-id", HEADER + "1,1,2,3,0,0\n2,1,2,3,0,0\n\n1,1,2,3,0,0\n", 5, "repeats line 2"),
    ("non-integer-id", HEADER + "1,1,2,3,0,0\n2.5,1,2,3,0,0\n", 3, "not an integer"),
    ("too-many-values", "measurement_id,x,y,z\n1,1,2,3,4\n", 2, "found 5"),
    ("duplicate-column", "measurement_id,x,y,z,z\n1,1,2,3,4\n", 1, "appears twice"),
    ("first-error-wins", HEADER + "1,1,2,3,0,0\n2,1,2,x,0,0\n3,y,2,3,0,0\n", 3, "column 'z'"),
]


@pytest.mark.parametrize(("content", "line", "fragment"),
                         [c[1:] for c in SPACEPOINT_CASES], ids=[c[0] for c in SPACEPOINT_CASES])
def test_bad_spacepoint_csv(tmp_path: Path, content: str, line: int | None,
                            fragment: str) -> None:
    path = write(tmp_path / "sp.csv", content)
    for reader in (read_event, read_spacepoint_csv):
        err = _raise(reader, path)
        assert err.line == line, str(err)
        assert fragment in str(err), str(err)


def _edit(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(edit(lines)))


def _set_field(line: str, index: int, value: str) -> str:
    fields = line.rstrip("\n").split(",")
    fields[index] = value
    return ",".join(fields) + "\n"


TRACKML_CASES = [
    # (id, file part, edit of the file's lines, expected line or None, fragment)
    ("hits-missing-column", "hits", lambda ls: [ls[0].replace(",module_id", ""), *ls[1:]],
     1, "missing column(s) module_id"),
    ("hits-truncated", "hits", lambda ls: [*ls[:-1], ls[-1].split(",")[0] + ",1"], "last",
     "truncated"),
    ("hits-nan", "hits", lambda ls: [*ls[:3], "\n", _set_field(ls[3], 2, "nan"), *ls[4:]], 5,
     "column 'y'"),
    ("hits-duplicate", "hits", lambda ls: [*ls, ls[1]], "last", "repeats line 2"),
    ("truth-bad-particle", "truth", lambda ls: [*ls[:2], _set_field(ls[2], 1, "x"), *ls[3:]],
     3, "column 'particle_id'"),
    ("truth-unknown-hit", "truth", lambda ls: [*ls[:2], _set_field(ls[2], 0, "999999"),
                                               *ls[3:]], 3, "not in event000000007-hits.csv"),
    ("truth-missing-row", "truth", lambda ls: ls[:-1], None, "no truth row"),
    ("particles-wrong-count", "particles", lambda ls: [*ls[:2], "1,2\n", *ls[2:]], 3, "found 2"),
    ("particles-empty", "particles", lambda ls: [], None, "empty"),
]


@pytest.mark.parametrize(("part", "edit", "line", "fragment"),
                         [c[1:] for c in TRACKML_CASES], ids=[c[0] for c in TRACKML_CASES])
def test_bad_trackml(event: Event, tmp_path: Path, part: str,
                     edit: Callable[[list[str]], list[str]], line: int | str | None,
                     fragment: str) -> None:
    prefix = write_trackml(event, tmp_path)
    path = tmp_path / f"event000000007-{part}.csv"
    _edit(path, edit)
    if line == "last":
        line = len(path.read_text().splitlines())
    for source in (prefix, tmp_path / "event000000007-hits.csv", tmp_path):
        with pytest.raises(InputError) as info:
            read_event(source)
        err = info.value
        assert err.path == str(path), str(err)
        assert err.line == line, str(err)
        assert fragment in str(err), str(err)
        assert "\n" not in str(err)


def test_reported_line_matches_physical_line(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    for trial in range(20):
        n = int(rng.integers(1, 60))
        lines = []
        for _ in range(n):
            lines.append("0.1,0.2,0.3")
            lines.extend([""] * int(rng.integers(0, 3)))
        bad = int(rng.integers(0, len(lines)))
        lines.insert(bad, "0.1,oops,0.3")
        sep = ["\n", "\r\n", "\r"][trial % 3]
        path = write(tmp_path / f"t{trial}.csv", sep.join(lines) + sep)
        err = _raise(read_feature_csv, path)
        assert err.line == bad + 1


def test_missing_paths_and_empty_directories(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    for func in (read_event, event_sources, read_feature_csv, read_spacepoint_csv):
        err = _raise(func, missing)
        assert err.line is None
    with pytest.raises(InputError, match="no such file") as info:
        read_trackml(tmp_path / "event000000001")
    assert info.value.path == str(tmp_path / "event000000001-hits.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    write(empty / "readme.txt", "no csv here")
    for func in (read_event, event_sources):
        assert "no event files" in str(_raise(func, empty))
    assert "directory" in str(_raise(read_feature_csv, empty))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions and a non-root user")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "locked.csv", "0.1,0.2,0.3\n")
    path.chmod(0)
    try:
        assert "cannot read" in str(_raise(read_event, path))
    finally:
        path.chmod(0o644)


def test_unreadable_file_whatever_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = write(tmp_path / "plain", "x")
    assert "Not a directory" in str(_raise(read_feature_csv, blocker / "evt.csv"))
    path = write(tmp_path / "locked.csv", "0.1,0.2,0.3\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    err = _raise(read_event, path)
    assert str(err) == f"{path}: cannot read file (Permission denied)"


# --------------------------------------------------------------------------- properties

_FIELD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-", "1e", "1e999", " 1 ", "abc", "0x1", "1_0",
                     '"1"', "True", "#", "\t2"]),
    st.text(max_size=4),
)
_ROWS = st.lists(st.lists(_FIELD, max_size=7).map(",".join), max_size=12)
_HEADERS = st.sampled_from(["", "measurement_id,x,y,z,var_r,var_z", "hit_id,x,y,z", "x,y,z",
                            "measurement_id,x,y,z,x", ",".join(HIT_COLUMNS)])
_NEWLINES = st.sampled_from(["\n", "\r\n", "\r", "\n\n"])


@st.composite
def csv_like(draw: st.DrawFn) -> bytes:
    header, rows, nl = draw(_HEADERS), draw(_ROWS), draw(_NEWLINES)
    text = nl.join([header, *rows] if header else rows)
    if draw(st.booleans()):
        text += nl
    return text.encode("utf-8", errors="surrogatepass")


_CONTENT = st.one_of(st.binary(max_size=300), st.text(max_size=200).map(
    lambda t: t.encode("utf-8", errors="surrogatepass")), csv_like())


def _parses_or_input_error(reader: Callable[[Path], Event], path: Path) -> None:
    try:
        ev = reader(path)
    except InputError as err:
        assert "\n" not in str(err) and "\r" not in str(err)
        assert str(err).startswith(str(path))
        if err.line is not None:
            assert 1 <= err.line <= len(path.read_bytes().splitlines()) + 1
        return
    check_event(ev)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=_CONTENT, name=st.sampled_from(["evt_1.csv", "event000000001-hits.csv"]))
def test_any_content_parses_or_raises_input_error(content: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        _parses_or_input_error(read_event, path)
        if name == "evt_1.csv":
            _parses_or_input_error(read_feature_csv, path)
            _parses_or_input_error(read_spacepoint_csv, path)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.tuples(*[st.floats(-1e6, 1e6, allow_subnormal=True)] * 3),
                       min_size=1, max_size=30))
def test_finite_feature_rows_read_back_exactly(values: list[tuple[float, float, float]]) -> None:
    text = "\n".join(",".join(repr(v) for v in row) for row in values) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evt_9.csv"
        path.write_text(text)
        ev = read_event(path)
    np.testing.assert_array_equal(ev.features, np.array(values, dtype=np.float32))
