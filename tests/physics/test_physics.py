"""The shipped weights find tracks: a physics regression test on fresh simulated events.

The full figures (100 events) are in the README; this checks a smaller sample against
looser bounds so that it cannot fail by chance but does fail if the weights, a stage or the
simulation breaks.
"""

from __future__ import annotations

import pytest

from exatrkx.core.models import read_metadata
from exatrkx.core.pipeline import load_pipeline
from exatrkx.physics.metrics import evaluate_event, summarize
from exatrkx.sim.simulate import simulate_events

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def summary() -> dict:
    pipe = load_pipeline()
    per_event = []
    # a seed the training never used (training: seed 910000, events 0-219)
    for event in simulate_events("hnl", 12, seed=31337):
        per_event.append(evaluate_event(event, pipe(event.features)))
    return summarize(per_event)


def test_shipped_weights_say_how_they_were_made() -> None:
    meta = read_metadata()
    assert meta["made_by"].startswith("exatrkx train")
    assert meta["validation_metrics"]["track_efficiency"] > 0.95


def test_track_efficiency(summary: dict) -> None:
    assert summary["track_efficiency"] > 0.95
    assert summary["counts"]["reconstructable"] > 100


def test_displaced_daughters_are_found(summary: dict) -> None:
    assert summary["counts"]["displaced"] >= 10
    assert summary["track_efficiency_displaced"] > 0.85


def test_few_fakes_and_duplicates(summary: dict) -> None:
    assert summary["fake_rate_majority"] < 0.02
    assert summary["duplicate_rate"] < 0.02
    # strict double majority: without the label stage's minimum-pT selection, looper arcs
    # put this above 0.04
    assert summary["fake_rate"] < 0.02
