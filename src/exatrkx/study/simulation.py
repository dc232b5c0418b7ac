"""The study's check of the simulation: simulated HNL events against the events it times.

When the study times real events (the shared HNL sample), it simulates as many HNL events
with ACTS and compares the two (spacepoints per event, r, z, |eta|, with two-sample
distances; :mod:`exatrkx.physics.samples`) and the pipeline's edges per hit after each stage
on both: nets trained on simulation must see real events alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exatrkx.core.pipeline import load_pipeline
from exatrkx.io import Event
from exatrkx.physics.samples import Sample, compare
from exatrkx.sim.simulate import simulate_events

#: Edge stages whose edges per hit are compared.
EDGE_STAGES = ("build", "filter", "gnn")


@dataclass
class SimulationCheck:
    """The comparison: both samples, the distances and the edges per hit."""

    real: Sample
    simulated: Sample
    summary: dict[str, Any] = field(default_factory=dict)


def edges_per_hit(events: Sequence[Event], weights: Path | None) -> dict[str, float]:
    """Edges per hit after each stage over all events (option 0)."""
    pipe = load_pipeline(weights)
    totals = dict.fromkeys(EDGE_STAGES, 0)
    hits = 0
    for ev in events:
        res = pipe.run(ev.features)
        hits += ev.num_hits
        for k in EDGE_STAGES:
            totals[k] += res.edges.get(k, 0)
    return {k: v / max(hits, 1) for k, v in totals.items()}


def check_simulation(events: Sequence[Event], name: str, seed: int,
                     weights: Path | None) -> SimulationCheck:
    """Simulate as many HNL events as ``events`` (seed ``seed``) and compare."""
    simulated = list(simulate_events("hnl", len(events), seed))
    real = Sample.of(name, events)
    sim = Sample.of(f"simulated HNL (seed {seed})", simulated)
    summary = compare(real, sim)
    summary["edges_per_hit"] = {"real": edges_per_hit(events, weights),
                                "simulated": edges_per_hit(simulated, weights)}
    return SimulationCheck(real, sim, summary)
