"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


# ---------------------------------------------------------------------------- ACTS events

def simulate_gun_events(out: Path, events: int, seed: int, detector: object,
                        vertex_r: float = 0.0) -> Path:
    """TrackML events from ``exatrkx.sim`` (ACTS Fatras in the generic detector): 10 muons of
    pT 1-10 GeV within |eta| < 2.5 per event; with ``vertex_r``, each produced that far (mm)
    from the beam at 0.6 rad in azimuth from its direction (a daughter of a decay in flight,
    pointing away from the beam: |d0| about 0.56 ``vertex_r``). A few ms per event."""
    import numpy as np

    from exatrkx.io import write_trackml
    from exatrkx.sim.particles import GunConfig
    from exatrkx.sim.simulate import SimConfig, Simulator

    class KinkedGun(Simulator):
        def generate(self, number: int) -> Any:
            made = super().generate(number)
            p = made.particles
            phi = np.arctan2(p["py"], p["px"]) + 0.6 * np.where(p["part"] % 2 == 0, 1, -1)
            p["x"], p["y"] = vertex_r * np.cos(phi), vertex_r * np.sin(phi)
            return made

    sim = KinkedGun("gun", seed, config=SimConfig(gun=GunConfig(n_particles=10)),
                    detector=detector)
    for event in sim.events(range(events)):
        write_trackml(event, out)
    return out


@pytest.fixture(scope="session")
def acts_detector() -> object:
    """ACTS' generic detector (built once: about a second)."""
    from exatrkx.sim.geometry import Detector

    return Detector()


@pytest.fixture(scope="session")
def acts_events(tmp_path_factory: pytest.TempPathFactory, acts_detector: object) -> Path:
    """Four ACTS-simulated events of 10 prompt muons each (TrackML files with truth)."""
    return simulate_gun_events(tmp_path_factory.mktemp("acts") / "prompt", 4, 11,
                               acts_detector)


@pytest.fixture(scope="session")
def displaced_acts_events(tmp_path_factory: pytest.TempPathFactory,
                          acts_detector: object) -> Path:
    """Three ACTS-simulated events of 10 muons each produced 60 mm from the beam, not
    pointing back to it."""
    return simulate_gun_events(tmp_path_factory.mktemp("acts") / "displaced", 3, 12,
                               acts_detector, vertex_r=60.0)
