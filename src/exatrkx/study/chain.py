"""The study's chain phase: our finder as a service inside ACTS, against ACTS' CKF in process.

With ``--chain-events DIR`` (ACTS-simulated events with truth), one ACTS sequencer runs over
the events with our finder three times, in process (option 0) and through the study's server
(options 4 and 5), and ACTS' CKF once, all fitted, selected and scored alike
(:mod:`exatrkx.acts`); each event passes through all four in turn, so they see the same load.
The report gains the table of the four and the efficiency against production radius of our
finder and the CKF in one figure.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exatrkx.acts.app import chain_report, execute_chain
from exatrkx.acts.chain import CKF_NAME
from exatrkx.acts.finder import LabelRunner
from exatrkx.contract import OPTIONS, Option
from exatrkx.io import event_sources
from exatrkx.service.runner import make_runner, warm_up
from exatrkx.study.results import Endpoint

#: Our finder's options in the chain phase: in process, the ensemble, the whole-pipeline model.
CHAIN_OPTIONS: tuple[Option, ...] = (Option.IN_PROCESS, Option.ENSEMBLE, Option.PIPELINE_MODEL)
#: Physics keys that must agree between the options (identical labels, identical tracks).
SAME_PHYSICS = ("track_efficiency", "track_efficiency_displaced", "fake_rate",
                "duplicate_rate", "pt_resolution", "d0_resolution_mm", "fit_failures")


def finder_name(option: Option) -> str:
    """Our finder through ``option`` in the chain phase (``gnn_s4``)."""
    return f"gnn_s{int(option)}"


@dataclass
class ChainPhase:
    """What the chain phase measured.

    Attributes:
        events: where the events came from.
        summary: the chain's summary (``events``, ``finders`` by name, ``failed``, ...).
        finders: per finder, the full summary (binned efficiencies included).
        errors: one line per event that failed, and what was left out.
        same_tracks: the three options' physics agree exactly.
    """

    events: str
    summary: dict[str, Any] = field(default_factory=dict)
    finders: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    same_tracks: bool = True


def run_chain_phase(events: Path, endpoint: Endpoint, weights: Path | None,
                    threads: int) -> ChainPhase:
    """Our finder through options 0, 4 and 5 (the study's server) and the CKF on ``events``.

    Raises:
        InputError: no events; ServerUnavailable: the server does not answer.
    """
    sources = event_sources(events)
    with contextlib.ExitStack() as stack:
        runners: dict[str, LabelRunner] = {}
        for option in CHAIN_OPTIONS:
            remote = OPTIONS[option].remote
            runner = stack.enter_context(make_runner(
                option, endpoint.grpc_url if remote else None, weights_dir=weights,
                num_threads=threads, **(endpoint.client("grpc") if remote else {})))
            warm_up(runner)
            runners[finder_name(option)] = runner
        run = execute_chain(sources, runners, ckf=True)
    names = [*runners, CKF_NAME]
    report = chain_report(run, sources, {}, names, lambda _line: None)
    phase = ChainPhase(str(events), report.summary, report.finders, report.errors)
    first = report.finders[finder_name(CHAIN_OPTIONS[0])]
    phase.same_tracks = all(
        _same(report.finders[finder_name(o)][k], first[k])
        for o in CHAIN_OPTIONS[1:] for k in SAME_PHYSICS)
    return phase


def _same(a: Any, b: Any) -> bool:
    return bool(a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b))


def chain_summary(phase: ChainPhase) -> dict[str, Any]:
    """The phase for the JSON summary and the report: one row per finder (``finder`` is its
    label in the report's table)."""
    rows = []
    for name, f in phase.summary["finders"].items():
        label = ("CKF (ACTS, in process)" if name == CKF_NAME else
                 f"GNN S{name.removeprefix('gnn_s')} "
                 f"({OPTIONS[Option(int(name.removeprefix('gnn_s')))].description})")
        rows.append({"finder": label, "name": name, **f})
    ckf = phase.summary["finders"].get(CKF_NAME, {})
    return {"source": phase.events, "events": phase.summary["events"],
            "failed": phase.summary["failed"], "hits_per_event": phase.summary["hits_per_event"],
            "same_tracks": phase.same_tracks, "errors": list(phase.errors),
            "reconstructable": ckf.get("reconstructable"), "displaced": ckf.get("displaced"),
            "rows": rows}
