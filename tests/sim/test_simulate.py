"""Event sources and the ACTS detector simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.constants import B_FIELD_T, GEV_PER_TESLA_MM
from exatrkx.errors import InputError
from exatrkx.io.readers import read_trackml
from exatrkx.physics.truth import event_truth_graph
from exatrkx.sim.geometry import Detector
from exatrkx.sim.particles import GunConfig, pack_barcode, unpack_barcode
from exatrkx.sim.pythia import HNL_ID
from exatrkx.sim.simulate import SimConfig, Simulator, hit_weights, run_simulate, simulate_events


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector()


def gun_sim(det: Detector, seed: int = 3, **gun: object) -> Simulator:
    base: dict[str, object] = {"n_particles": 5, "pt_range": (10.0, 10.0),
                               "eta_range": (-0.3, 0.3)}
    base.update(gun)
    return Simulator("gun", seed, config=SimConfig(gun=GunConfig(**base)),  # type: ignore[arg-type]
                     detector=det)


def tracks(ev) -> dict[int, pd.DataFrame]:
    """Hits (with truth) per particle, sorted by hit_id."""
    df = ev.hits.merge(ev.truth, on="hit_id").sort_values("hit_id")
    return {int(pid): g for pid, g in df.groupby("particle_id") if pid != 0}


def primaries(ev) -> dict[int, pd.DataFrame]:
    """Tracks of the generator's particles (not Fatras' secondaries)."""
    fields = unpack_barcode(np.array(list(tracks(ev))))
    keep = (fields["gen"] == 0) & (fields["sub"] == 0)
    return {pid: g for (pid, g), k in zip(tracks(ev).items(), keep, strict=True) if k}


def test_central_tracks_cross_every_barrel_layer_in_path_order(det: Detector) -> None:
    (ev,) = gun_sim(det).events([0])
    found = primaries(ev)
    assert len(found) == 5
    for g in found.values():
        layers = list(dict.fromkeys(zip(g.volume_id, g.layer_id, strict=True)))
        assert layers == [(8, 2), (8, 4), (8, 6), (8, 8), (13, 2), (13, 4), (13, 6), (13, 8),
                          (17, 2), (17, 4)]
        r = np.hypot(g.tx, g.ty).to_numpy()
        assert np.all(np.diff(r) > -1.0)  # increasing hit_id = path order
    assert sorted(ev.hit_id.tolist()) == list(range(1, ev.num_hits + 1))
    # hit ids do not give the particles away: ids of one track are not consecutive
    assert any(np.diff(np.sort(g.hit_id)).max() > 1 for g in found.values())


def test_curvature_gives_the_momentum(det: Detector) -> None:
    (ev,) = gun_sim(det, 4, n_particles=1, pt_range=(1.0, 1.0), random_charge=False).events([0])
    g = next(iter(primaries(ev).values()))
    x, y = g.tx.to_numpy(), g.ty.to_numpy()
    a = np.stack([x, y, np.ones_like(x)], axis=1)
    cx, cy, c = np.linalg.lstsq(a, x ** 2 + y ** 2, rcond=None)[0]
    radius = np.sqrt(c + (cx / 2) ** 2 + (cy / 2) ** 2)
    assert radius == pytest.approx(1.0 / (GEV_PER_TESLA_MM * B_FIELD_T), rel=0.03)


def test_determinism_and_event_independence(det: Detector) -> None:
    a = list(gun_sim(det, 7).events([3, 4]))
    b = list(gun_sim(det, 7).events([4]))
    pd.testing.assert_frame_equal(a[1].hits, b[0].hits)
    pd.testing.assert_frame_equal(a[1].truth, b[0].truth)
    c = list(gun_sim(det, 8).events([4]))
    assert not a[1].hits.x.equals(c[0].hits.x)


def test_displaced_gun_has_no_inner_hits(det: Detector) -> None:
    (ev,) = gun_sim(det, 5, vertex_r=200.0).events([0])
    for g in primaries(ev).values():
        assert (np.hypot(g.tx, g.ty) > 199.0).all()
    p = ev.particles
    assert (np.hypot(p.vx, p.vy)[unpack_barcode(p.particle_id.to_numpy())["gen"] == 0]
            > 199.0).all()


def test_soft_particles_are_kept_and_turn_inside_the_tracker(det: Detector) -> None:
    pt = 0.2
    sim = gun_sim(det, 2, n_particles=4, pt_range=(pt, pt), eta_range=(-0.2, 0.2), pdg=211)
    assert sim.config.min_momentum == pytest.approx(0.05)
    (ev,) = sim.events([0])
    diameter = 2 * pt / (GEV_PER_TESLA_MM * B_FIELD_T)  # 667 mm
    found = primaries(ev)
    assert len(found) == 4
    for g in found.values():
        r = np.hypot(g.tx, g.ty).to_numpy()
        assert r.max() < diameter and r.max() > 300.0  # reaches the strips, never 820 mm


def test_noise_weights_and_tables(det: Detector) -> None:
    sim = Simulator("gun", 9, noise=0.2, config=SimConfig(gun=GunConfig(n_particles=30)),
                    detector=det)
    (ev,) = sim.events([0])
    noise = ev.truth.particle_id == 0
    assert noise.sum() == round(0.2 * (~noise).sum())
    assert ev.truth.weight.sum() == pytest.approx(1.0)
    assert (ev.truth.weight[noise] == 0).all() and (ev.truth.weight >= 0).all()
    per = ev.truth[~noise].groupby("particle_id").size()
    nhits = ev.particles.set_index("particle_id").nhits
    assert (per.to_numpy() == nhits.loc[per.index].to_numpy()).all()
    assert nhits.sum() == (~noise).sum()
    assert (ev.particles.particle_id > 0).all() and ev.particles.particle_id.is_unique
    assert len(event_truth_graph(ev)[0]) == (~noise).sum() - len(per)


def test_weights_favour_track_ends() -> None:
    w = hit_weights(np.array([0, 0, 0, 0, 0, 1, 1]), np.array([3.0] * 5 + [3.0, 3.0]))
    assert list(w[:5]) == [3.0, 2.0, 1.0, 2.0, 3.0]
    assert list(w[5:]) == [0.0, 0.0]  # fewer than 4 hits


def test_barcodes_pack_into_positive_ids() -> None:
    pid = pack_barcode(np.array([1, 201]), np.array([0, 5]), np.array([7, 65535]),
                       np.array([0, 3]), np.array([0, 2]))
    assert (pid > 0).all()
    fields = unpack_barcode(pid)
    assert fields["vp"].tolist() == [1, 201] and fields["sub"].tolist() == [0, 2]
    with pytest.raises(OverflowError):
        pack_barcode(1, 0, 1 << 16)


def test_hnl_events_look_like_the_shared_sample(det: Detector) -> None:
    sim = Simulator("hnl", 1234, detector=det)
    assert (sim.config.min_momentum, sim.config.neutral, sim.config.max_eta) == (0.5, False,
                                                                                  4.0)
    events = list(sim.events(range(6)))
    displaced = 0
    for ev in events:
        p = ev.particles
        hnl = p[p.particle_type.abs() == HNL_ID]
        assert len(hnl) == 1 and (hnl.q == 0).all()
        decay = np.hypot(p.vx, p.vy)
        fields = unpack_barcode(p.particle_id.to_numpy())
        daughters = (fields["vs"] > 0) & (fields["gen"] == 0) & (p.nhits > 0) & (decay > 10)
        displaced += int(daughters.any())
        assert 50 < ev.num_hits < 6000
    assert displaced >= 3
    assert 500 < np.mean([e.num_hits for e in events]) < 2500


def test_pileup_adds_interactions_along_z(det: Detector) -> None:
    base = next(iter(gun_sim(det, 1).events([0])))
    sim = Simulator("gun", 1, pileup=5, config=SimConfig(gun=GunConfig(n_particles=5)),
                    detector=det)
    assert sim.config.min_momentum == pytest.approx(0.05) and sim.config.neutral
    (piled,) = sim.events([0])
    vp = unpack_barcode(piled.particles.particle_id.to_numpy())["vp"]
    assert len(np.unique(vp)) > 2
    assert piled.num_hits > base.num_hits
    assert np.ptp(piled.particles.vz[vp > 1]) > 10.0  # vertices spread along z


def test_particles_outside_the_world_are_dropped_and_counted(det: Detector) -> None:
    sim = gun_sim(det, 1, n_particles=4, vertex_r=2000.0)
    (ev,) = sim.events([0])
    assert ev.num_hits == 0
    assert sim.stats.outside_world == 4 and sim.stats.events == 1


def test_run_simulate_writes_and_reads_back(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    written = run_simulate("gun", 2, 1, tmp_path, first_event=5, progress=False, noise=0.1)
    assert [p.name for p in written] == ["event000000005", "event000000006"]
    ev = read_trackml(tmp_path / "event000000005")
    (ref,) = Simulator("gun", 1, noise=0.1).events([5])
    assert ev.num_hits == ref.num_hits and ev.has_truth
    assert np.allclose(ev.hits.x, ref.hits.x)
    assert "wrote 2 gun events" in capsys.readouterr().out


def test_a_failing_event_is_skipped_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    real = Simulator.generate

    def flaky(self: Simulator, number: int):
        if number == 1:
            raise RuntimeError("Pythia failed")
        return real(self, number)

    monkeypatch.setattr(Simulator, "generate", flaky)
    with pytest.raises(InputError, match="event000000001"):
        run_simulate("gun", 3, 1, tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.glob("*-hits.csv")) == [
        "event000000000-hits.csv", "event000000002-hits.csv"]
    assert "event 1 failed" in capsys.readouterr().err


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"source": "nope"}, "unknown source"),
    ({"n_events": 0}, "must be positive"),
    ({"pileup": -1.0}, "pileup"),
    ({"noise": 1.0}, "noise"),
    ({"noise": -0.1}, "noise"),
    ({"seed": -3}, "seed"),
])
def test_bad_inputs(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"source": "gun", "n_events": 1, "seed": 1, "out": tmp_path / "o", "progress": False}
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        run_simulate(**args)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        next(iter(simulate_events(args["source"], args["n_events"], args["seed"],
                                  pileup=args.get("pileup", 0.0), noise=args.get("noise", 0.0))))


@pytest.mark.parametrize("argv", [["--source", "nope"], ["--events", "0"], ["--pileup", "-2"],
                                  ["--noise", "1.5"], ["--min-momentum", "0"]])
def test_cli_bad_input(tmp_path: Path, argv: list[str]) -> None:
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "o"), *argv])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")


def test_cli_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(app, ["simulate", "--out", str(blocker / "sub"), "--source",
                                      "gun", "--events", "1"])
    assert result.exit_code == 2 and "cannot write to the output directory" in result.output


def test_cli_simulate_gun(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--source", "gun",
                                      "--events", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*-hits.csv"))) == 2
