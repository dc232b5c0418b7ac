"""Event sources and the fast detector simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from exatrkx.cli import app
from exatrkx.constants import GEV_PER_TESLA_MM as KAPPA
from exatrkx.errors import InputError
from exatrkx.io.readers import read_trackml
from exatrkx.sim.detector import generic_detector
from exatrkx.sim.propagate import propagate
from exatrkx.sim.simulate import (
    HNL_ID,
    GunConfig,
    SimConfig,
    Simulator,
    run_simulate,
    simulate_event,
    simulate_events,
)

IDEAL = SimConfig(efficiency=1.0, scattering=False, smear=False)
PERFECT = SimConfig(efficiency=1.0)


def _gun(**kw) -> GunConfig:
    base = {"n_particles": 1, "pt_range": (100.0, 100.0), "eta_range": (0.0, 0.0)}
    base.update(kw)
    return GunConfig(**base)


def _tracks(ev) -> dict[int, pd.DataFrame]:
    """Hits (with truth) per particle, sorted by hit_id."""
    df = ev.hits.merge(ev.truth, on="hit_id").sort_values("hit_id")
    return {int(pid): g for pid, g in df.groupby("particle_id") if pid != 0}


def test_straight_track_crosses_every_barrel_layer_in_order() -> None:
    ev = simulate_event("gun", 0, 3, gun=_gun(n_particles=5, eta_range=(-0.3, 0.3)),
                        config=PERFECT)
    barrels = [(8, 2), (8, 4), (8, 6), (8, 8), (13, 2), (13, 4), (13, 6), (13, 8), (17, 2),
               (17, 4)]
    tracks = _tracks(ev)
    assert len(tracks) == 5
    for g in tracks.values():
        assert list(zip(g.volume_id, g.layer_id, strict=True)) == barrels
        r = np.hypot(g.x, g.y).to_numpy()
        assert np.all(np.diff(r) > 0)         # increasing hit_id = path order
    assert sorted(ev.hit_id.tolist()) == list(range(1, ev.num_hits + 1))


def test_curvature_radius() -> None:
    ev = simulate_event("gun", 0, 4, gun=_gun(pt_range=(1.0, 1.0), random_charge=False),
                        config=IDEAL)
    g = next(iter(_tracks(ev).values()))
    pts = np.stack([g.x, g.y], axis=1)
    a, b, c = np.zeros(2), pts[len(pts) // 2], pts[-1]      # vertex, middle, last hit
    ab, bc, ca = np.linalg.norm(a - b), np.linalg.norm(b - c), np.linalg.norm(c - a)
    cross = (b - a)[0] * (c - a)[1] - (b - a)[1] * (c - a)[0]
    radius = ab * bc * ca / (2 * abs(cross))
    assert radius == pytest.approx(1000.0 / (0.3 * 2.0), rel=0.01)      # R = pT / (0.3 B)
    assert radius == pytest.approx(1.0 / (KAPPA * 2.0), rel=1e-3)       # 1.668 m


def test_charge_sign_of_bending() -> None:
    for pdg, sign in ((13, +1), (-13, -1)):        # mu- (q=-1) bends counter-clockwise
        ev = simulate_event("gun", 0, 4, gun=_gun(pdg=pdg, pt_range=(1.0, 1.0),
                                                   random_charge=False), config=IDEAL)
        t = ev.truth.sort_values("hit_id")
        p0 = ev.particles[["px", "py"]].to_numpy()[0]
        p1 = t[["tpx", "tpy"]].to_numpy()[-1]
        turn = p0[0] * p1[1] - p0[1] * p1[0]
        assert np.sign(turn) == sign


def test_displaced_vertex_no_pixel_hits() -> None:
    gun = _gun(n_particles=20, pt_range=(2.0, 10.0), eta_range=(-1.0, 1.0), vertex_r=300.0)
    ev = simulate_event("gun", 0, 5, gun=gun)
    assert ev.num_hits > 0
    assert not np.isin(ev.hits.volume_id, [7, 8, 9]).any()
    assert (np.hypot(ev.hits.x, ev.hits.y) > 299).all()
    assert np.allclose(np.hypot(ev.particles.vx, ev.particles.vy), 300.0)


def test_determinism() -> None:
    gun = GunConfig(n_particles=20, pt_range=(0.5, 5.0))
    a = simulate_event("gun", 7, 11, gun=gun, noise=0.05)
    b = simulate_event("gun", 7, 11, gun=gun, noise=0.05)
    c = simulate_event("gun", 7, 12, gun=gun, noise=0.05)
    pd.testing.assert_frame_equal(a.hits, b.hits)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.particles, b.particles)
    assert a.num_hits != c.num_hits or not np.allclose(a.hits.x, c.hits.x)


def test_hnl_event_depends_only_on_seed_and_number() -> None:
    evs = list(simulate_events("hnl", 3, 21))
    again = simulate_event("hnl", 2, 21)
    assert evs[2].name == again.name == "event000000002"
    pd.testing.assert_frame_equal(evs[2].hits, again.hits)
    pd.testing.assert_frame_equal(evs[2].particles, again.particles)
    assert evs[0].num_hits != evs[1].num_hits


def test_neutral_particles_give_no_hits() -> None:
    ev = simulate_event("gun", 0, 1, gun=_gun(pdg=22, n_particles=10))
    assert ev.num_hits == 0
    assert len(ev.particles) == 10 and (ev.particles.nhits == 0).all()
    assert (ev.particles.q == 0).all()


def test_loopers_repeat_layers_and_respect_path_limit() -> None:
    det = generic_detector(efficiency=1.0)
    n = 4
    mom = np.tile([0.12, 0.0, 0.0], (n, 1))     # R = 200 mm, pz = 0: loops forever
    rng = np.random.default_rng(0)
    for limit in (1000.0, 3000.0):
        cr = propagate(det, np.zeros((n, 3)), mom, -np.ones(n), np.full(n, 0.1396),
                       np.full(n, limit), rng, scattering=False)
        assert cr.path.max() <= limit
        per = np.bincount(cr.particle, minlength=n)
        # every turn (2 pi 200 mm) crosses the 6 layers within r < 400 mm twice
        expected = 12 * limit / (2 * np.pi * 200.0)
        assert np.all(np.abs(per - expected) <= 12)
        assert set(cr.surface.tolist()) <= set(det.barrel_index.tolist())
    ev = simulate_event("gun", 0, 2, gun=_gun(pt_range=(0.2, 0.2), n_particles=3),
                        config=PERFECT)
    for g in _tracks(ev).values():
        layers = list(zip(g.volume_id, g.layer_id, strict=True))
        assert len(layers) > len(set(layers))       # loops back over the same layers


def test_noise_and_weights() -> None:
    ev = simulate_event("gun", 0, 9, gun=GunConfig(n_particles=30), noise=0.2)
    noise = ev.truth.particle_id == 0
    assert noise.sum() == round(0.2 * (~noise).sum())
    assert ev.truth.weight.sum() == pytest.approx(1.0)
    assert (ev.truth.weight[noise] == 0).all() and (ev.truth.weight >= 0).all()
    real = ev.truth[~noise].merge(ev.hits, on="hit_id")
    per = real.groupby("particle_id").size()
    nhits = ev.particles.set_index("particle_id").nhits
    assert (per.to_numpy() == nhits.loc[per.index].to_numpy()).all()
    assert nhits.sum() == len(real)
    assert (ev.particles.particle_id > 0).all() and ev.particles.particle_id.is_unique


def test_hnl_displaced_daughters() -> None:
    displaced = 0
    events = list(simulate_events("hnl", 6, 1234))
    for ev in events:
        p = ev.particles
        hnl = p[p.particle_type.abs() == HNL_ID]
        assert len(hnl) == 1 and (hnl.q == 0).all()
        daughters = p[p.parent_id == hnl.particle_id.iloc[0]]
        assert len(daughters) >= 1
        if (np.hypot(daughters.vx, daughters.vy) > 10.0).all():
            displaced += 1
        assert ev.num_hits > 0
    assert displaced >= 3


def test_pileup_adds_interactions() -> None:
    gun = GunConfig(n_particles=5)
    base = simulate_event("gun", 0, 3, gun=gun)
    piled = simulate_event("gun", 0, 3, gun=gun, pileup=5)
    interactions = np.unique(piled.particles.particle_id // 100_000)
    assert len(interactions) > 2
    assert piled.num_hits > base.num_hits
    assert np.ptp(piled.particles.vz) > 1.0         # vertices spread along z


def test_run_simulate_writes_and_reads_back(tmp_path, capsys) -> None:
    written = run_simulate("gun", 2, 1, tmp_path, first_event=5, progress=False, noise=0.1)
    assert [p.name for p in written] == ["event000000005", "event000000006"]
    ev = read_trackml(tmp_path / "event000000005")
    ref = simulate_event("gun", 5, 1, noise=0.1)
    assert ev.num_hits == ref.num_hits and ev.has_truth
    assert np.allclose(ev.hits.x, ref.hits.x)
    assert "wrote 2 gun events" in capsys.readouterr().out


def test_run_simulate_reports_failed_events(tmp_path, monkeypatch, capsys) -> None:
    real_event = Simulator.event

    def flaky(self, source, number, *args, **kwargs):
        if number == 1:
            raise RuntimeError("boom")
        return real_event(self, source, number, *args, **kwargs)

    monkeypatch.setattr(Simulator, "event", flaky)
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
def test_bad_inputs(tmp_path, kwargs, message) -> None:
    args = {"source": "gun", "n_events": 1, "seed": 1, "out": tmp_path / "o", "progress": False}
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        run_simulate(**args)
    with pytest.raises(InputError):
        next(iter(simulate_events(args["source"], args["n_events"], args["seed"],
                                  pileup=args.get("pileup", 0.0), noise=args.get("noise", 0.0))))


@pytest.mark.parametrize("argv", [["--source", "nope"], ["--events", "0"], ["--pileup", "-2"],
                                  ["--noise", "1.5"]])
def test_cli_bad_input(tmp_path, argv) -> None:
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "o"), *argv])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")


def test_cli_simulate_gun(tmp_path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--source", "gun",
                                      "--events", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("event*-truth.csv"))) == 2
