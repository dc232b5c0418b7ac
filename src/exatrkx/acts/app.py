"""The chain application (``exatrkx chain``): our finder and ACTS' CKF on the same events,
fitted by ACTS, scored with one definition, timed per block.

It behaves like ``exatrkx reconstruct``: a bad event (unreadable file, no truth, hits off
the detector, refused by the server) is reported with one line naming it and skipped, the
others are processed; when the server becomes unreachable (after the client's retries) the
remaining events are not attempted, the summary's ``unprocessed`` lists every event
without a result, and a later run with ``--resume`` does only those (``--out`` results are
written atomically per event, so one that exists is complete; a resumed run scores the
earlier events from their files, and times only its own).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exatrkx.acts.chain import CKF_NAME, FittedTracks, build_sequencer
from exatrkx.acts.detector import Detector
from exatrkx.acts.evaluate import EventResult, score_event, summarize_finder
from exatrkx.acts.finder import LabelRunner
from exatrkx.acts.ledger import EventLedger, EventState
from exatrkx.contract import option
from exatrkx.errors import ExatrkxError, InputError
from exatrkx.io import event_sources, tracks_path
from exatrkx.physics.plots import plot_efficiency_comparison
from exatrkx.service.runner import make_runner, warm_up
from exatrkx.service.tls import ClientTls
from exatrkx.util.files import atomic_write_text
from exatrkx.util.jsonsafe import dumps

#: The finders of ``--finders``: our pipeline (through any option) and ACTS' CKF.
GNN_NAME = "gnn"
FINDERS = (GNN_NAME, CKF_NAME)


def parse_finders(text: str) -> tuple[str, ...]:
    """``"gnn,ckf"`` -> ``("gnn", "ckf")`` (in that order, once each).

    Raises:
        InputError: empty or an unknown finder.
    """
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not names:
        raise InputError(f"--finders: give a comma-separated list, got {text!r}")
    unknown = [n for n in names if n not in FINDERS]
    if unknown:
        raise InputError(f"--finders: unknown finder {unknown[0]!r} (choose from "
                         f"{','.join(FINDERS)})")
    return tuple(n for n in FINDERS if n in names)


def result_path(out: str | Path, source: str | Path) -> Path:
    """Where ``--out`` keeps the result of the event read from ``source``:
    ``<out>/<event name>-chain.json``."""
    tracks = tracks_path(out, source)
    return tracks.with_name(tracks.name.removesuffix("-tracks.csv") + "-chain.json")


def load_result(path: Path, finders: Sequence[str]) -> EventResult | None:
    """An earlier run's result holding every one of ``finders``; None when there is none
    (or it is unreadable, of another version, or lacks a finder: the event is redone)."""
    try:
        result = EventResult.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if all(f in result.finders for f in finders) else None


@dataclass
class ChainRun:
    """What one sequencer run did: the ledger, the scored events, ACTS' own failure."""

    ledger: EventLedger
    results: list[EventResult] = field(default_factory=list)
    acts_error: str | None = None


@contextlib.contextmanager
def acts_output_to_stderr() -> Iterator[None]:
    """ACTS logs to the process's standard output from C++; send it to standard error
    meanwhile, so that standard output holds only the command's own lines and its JSON (a
    Python ``sys.stdout`` on the same descriptor keeps writing to the real output)."""
    try:
        python_on_fd1 = sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):  # replaced (tests, notebooks)
        python_on_fd1 = False
    sys.stdout.flush()
    original = sys.stdout
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        if python_on_fd1:
            sys.stdout = open(saved, "w", buffering=1, encoding=original.encoding,
                              errors=original.errors, closefd=False)
        yield
    finally:
        if python_on_fd1:
            sys.stdout.flush()
            sys.stdout = original
        ctypes.CDLL(None).fflush(None)  # C and C++ (synchronised) stdio buffers
        os.dup2(saved, 1)
        os.close(saved)


def execute_chain(sources: Sequence[Path], runners: Mapping[str, LabelRunner], ckf: bool,
                  on_event: Callable[[EventResult], None] | None = None,
                  detector: Detector | None = None) -> ChainRun:
    """Run the chain over ``sources`` in one sequencer (one thread).

    Args:
        sources: TrackML event prefixes (:func:`exatrkx.io.event_sources`).
        runners: our finders: name -> runner (any option; warmed up by the caller).
        ckf: run ACTS' CKF too.
        on_event: called with each event's result as soon as it is scored (write it there;
            an :class:`ExatrkxError` it raises fails that event).
        detector: the generic detector (built here when None).
    """
    run = ChainRun(EventLedger(list(sources)))
    if not sources:
        return run
    detector = detector or Detector()
    ledger = run.ledger

    def collect(state: EventState,
                outputs: dict[str, tuple[FittedTracks, dict[str, int]]]) -> None:
        result = score_event(state, outputs)
        if on_event is not None:
            on_event(result)
        run.results.append(result)

    with tempfile.TemporaryDirectory(prefix="exatrkx-chain-") as tmp, acts_output_to_stderr():
        sequencer, _ = build_sequencer(detector, ledger, dict(runners), ckf, collect, tmp)
        try:
            sequencer.run()
        except RuntimeError as exc:  # an ACTS algorithm failed: the sequencer stops
            run.acts_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return run


@dataclass
class ChainReport:
    """What :func:`run_chain` did.

    Attributes:
        summary: the JSON-ready summary (``events``, ``finders`` with the contract's keys
            per finder, ``failed``, ``skipped``, ``empty_events``, ``unprocessed``,
            ``option``, ...).
        finders: per finder, :func:`~exatrkx.acts.evaluate.summarize_finder` in full (with
            the binned efficiencies).
        errors: one message per failed event (naming its file), then what was left out.
        lines: human-readable lines (one per event, then the table).
        exit_code: 0, or the code of the worst error (2 bad input, 3 server).
    """

    summary: dict[str, Any]
    finders: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    exit_code: int = 0


def run_chain(events: str | Path, finders: str | Sequence[str] = FINDERS,
              option_number: int = 0, url: str | None = None,
              weights_dir: str | Path | None = None, out: str | Path | None = None, *,
              resume: bool = False, plots: str | Path | None = None,
              timeout_s: float | None = None, retries: int | None = None,
              num_threads: int | None = 1, tls: ClientTls | None = None,
              on_line: Callable[[str], None] | None = None,
              runner: LabelRunner | None = None,
              detector: Detector | None = None) -> ChainReport:
    """Run the chain (``exatrkx chain``) over every event under ``events``.

    Args:
        events: directory, prefix or file of TrackML events with truth from an ACTS
            simulation of the generic detector.
        finders: ``"gnn,ckf"`` or a sequence of those names.
        option_number: service option of our finder (0 = in process).
        url: Triton ``host:port`` for options 1-5.
        weights_dir: weights folder or shipped set name of the local stages.
        out: write ``<event>-chain.json`` here (atomically, per event).
        resume: take the events with a result in ``out`` from there, run the others.
        plots: write ``efficiency_vs_radius.png`` (every finder in one figure) here.
        timeout_s: client timeout of one request (options 1-5; None: the client default).
        retries: resends after a transient failure (None: the client default).
        num_threads: torch intra-op threads (None: leave as is).
        tls: TLS of the connections to the server (options 1-5; None: plain text).
        on_line: called with each human-readable line as it is produced.
        runner: our finder's runner, warmed up, instead of one made here from
            ``option_number``, ``url`` and ``weights_dir`` (a program that holds one).
        detector: the generic detector (built here when None).

    Raises:
        InputError: bad settings, no events; ServerUnavailable: no server at ``url``.
    """
    names = parse_finders(finders if isinstance(finders, str) else ",".join(finders))
    try:
        opt = option(option_number)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if resume and out is None:
        raise InputError("--resume needs --out (the folder of the results already written)")
    emit = on_line or (lambda _line: None)
    sources = event_sources(events)
    earlier: dict[Path, EventResult] = {}
    if resume:
        assert out is not None
        for source in sources:
            loaded = load_result(result_path(out, source), names)
            if loaded is not None:
                earlier[source] = loaded
    todo = [s for s in sources if s not in earlier]

    def on_event(result: EventResult) -> None:
        if out is not None:
            try:
                atomic_write_text(result_path(out, result.source), dumps(result.to_json()),
                                  sync=False)
            except OSError as exc:
                raise InputError(f"cannot write the result ({exc.strerror or exc})",
                                 out) from None
        emit(event_line(result))

    with contextlib.ExitStack() as stack:
        runners: dict[str, LabelRunner] = {}
        if GNN_NAME in names and todo:
            if runner is None:
                made = stack.enter_context(make_runner(opt, url, weights_dir=weights_dir,
                                                       timeout_s=timeout_s, retries=retries,
                                                       num_threads=num_threads, tls=tls))
                warm_up(made)
                runner = made
            runners[GNN_NAME] = runner
        run = execute_chain(todo, runners, CKF_NAME in names, on_event, detector)
    report = chain_report(run, sources, earlier, names, emit)
    report.summary["option"] = int(opt) if GNN_NAME in names else None
    if plots is not None and report.summary["events"]:
        path = plot_efficiency_comparison(
            report.finders, Path(plots) / "efficiency_vs_radius.png",
            title=f"{report.summary['events']} events of {Path(events).name}")
        report.summary["plots"] = [str(path)]
    return report


def event_line(result: EventResult) -> str:
    """One human-readable line per event."""
    parts = []
    for name, f in result.finders.items():
        fail = f.counts.get("fit_failures")
        parts.append(f"{name} {f.counts['selected']} tracks"
                     + (f" ({fail} fit failures)" if fail else "")
                     + f" {f.ms['chain']:.1f} ms")
    return f"{result.name}: {result.hits} hits; " + ", ".join(parts)


def chain_report(run: ChainRun, sources: Sequence[Path], earlier: Mapping[Path, EventResult],
                 names: Sequence[str], emit: Callable[[str], None]) -> ChainReport:
    """The summary, errors and table of a run (plus the events taken from earlier runs)."""
    report = ChainReport(summary={})
    ledger = run.ledger
    for number, exc in ledger.errors:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        source = str(ledger.sources[number])
        report.errors.append(msg if source in msg else f"{source}: {msg}")
        report.exit_code = max(report.exit_code, exc.exit_code)
    if ledger.not_attempted:
        report.errors.append(f"{len(ledger.not_attempted)} more events not attempted: the "
                             "server is unavailable (rerun with --resume)")
    lost = ledger.unaccounted()
    if lost:
        report.errors.append(f"ACTS stopped the run ({run.acts_error or 'no reason given'}); "
                             f"{len(lost)} events not processed (rerun with --resume)")
        report.exit_code = max(report.exit_code, ExatrkxError.exit_code)
    failed = sorted({n for n, _ in ledger.errors} | set(ledger.not_attempted) | set(lost))
    by_source = {Path(r.source): r for r in run.results} | dict(earlier)
    results = [by_source[s] for s in sources if s in by_source]
    for name in names:
        report.finders[name] = summarize_finder(results, name)
    timed = [r for r in results if r.timed]
    report.summary = {
        "events": len(results), "failed": len(failed), "skipped": len(earlier),
        "empty_events": sum(r.hits == 0 for r in results),
        "unprocessed": [str(ledger.sources[n]) for n in failed],
        "hits_per_event": float(np.mean([r.hits for r in results])) if results else None,
        "read_ms_per_event": float(np.mean([r.read_ms for r in timed])) if timed else None,
        "finders": {n: {k: v for k, v in s.items() if k != "binned"}
                    for n, s in report.finders.items()}}
    for line in summary_lines(report.summary):
        report.lines.append(line)
        emit(line)
    return report


def _fmt(value: Any, spec: str = ".4f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The closing lines: counts, then one table row per finder."""
    lines = [f"{summary['events']} events, {summary['failed']} failed"
             + (f", {summary['empty_events']} without hits" if summary["empty_events"] else "")
             + (f", {summary['skipped']} from earlier results" if summary["skipped"] else "")]
    head = (f"{'finder':<8}{'eff':>8}{'eff r>10':>10}{'fake':>8}{'dupl':>8}{'pT res':>8}"
            f"{'d0 res':>9}{'fit fail':>9}{'find ms':>9}{'chain ms':>9}")
    lines += [head, "-" * len(head)]
    for name, f in summary["finders"].items():
        lines.append(f"{name:<8}{_fmt(f['track_efficiency']):>8}"
                     f"{_fmt(f['track_efficiency_displaced']):>10}{_fmt(f['fake_rate']):>8}"
                     f"{_fmt(f['duplicate_rate']):>8}{_fmt(f['pt_resolution'], '.2%'):>8}"
                     f"{_fmt(f['d0_resolution_mm'], '.3f'):>7}mm"
                     f"{_fmt(f['fit_failures'], 'd'):>9}"
                     f"{_fmt(f['finding_ms_per_event'], '.1f'):>9}"
                     f"{_fmt(f['ms_per_event'], '.1f'):>9}")
    return lines
