"""``exatrkx chain``: our finder inside an ACTS reconstruction chain, against ACTS' CKF."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from exatrkx.cli.app import app, user_errors
from exatrkx.cli.options import (
    JsonOut,
    Retries,
    Timeout,
    check_request_options,
    client_tls_options,
    finish_run,
)
from exatrkx.errors import InputError


@app.command()
@user_errors
@client_tls_options
def chain(
    events: Annotated[Path, typer.Option(help="TrackML events with truth from an ACTS "
                                              "simulation of the generic detector: a "
                                              "directory or an event prefix.")],
    finders: Annotated[str, typer.Option(help="Track finders: gnn (ours, through "
                                              "--option), ckf (ACTS' CKF, in process).")]
    = "gnn,ckf",
    option: Annotated[int, typer.Option(help="Service option 0-5 of our finder "
                                             "(0: in process).")] = 0,
    url: Annotated[str | None, typer.Option(help="Triton HOST:PORT (options 1-5).")] = None,
    weights: Annotated[Path | None, typer.Option(help="Weights folder or shipped set name "
                                                      "(default: the shipped weights).")]
    = None,
    out: Annotated[Path | None, typer.Option(help="Write <event>-chain.json (each event's "
                                                  "scores, counters, timing) here.")] = None,
    resume: Annotated[bool, typer.Option(help="Take the events with a result in --out from "
                                              "there and run the others (after an "
                                              "interrupted run).")] = False,
    plots: Annotated[Path | None, typer.Option(help="Write efficiency_vs_radius.png (every "
                                                    "finder in one figure) here.")] = None,
    json_out: JsonOut = False,
    threads: Annotated[int, typer.Option(help="Torch threads.")] = 1,
    timeout: Timeout = 60.0,
    retries: Retries = 2,
    tls: Any = None,
) -> None:
    """Reconstruct events in ACTS with our finder and with ACTS' CKF; fit, select, score
    both with one definition and time them.

    Our finder sends each event's spacepoints through the service option (in process or
    to the server at --url, over TLS with --tls-ca) and hands its tracks to ACTS, which
    estimates their starting parameters and fits them with its Kalman fitter. The CKF runs
    with ACTS' own settings for the generic detector. Exit code 2: an event was bad input;
    3: the server was unavailable, refused (key, TLS) or failed (the events not attempted
    are listed; rerun with --resume).
    """
    # ACTS is a heavy import (the C++ bindings and the detector): only when the command runs
    from exatrkx.acts.app import run_chain

    check_request_options(timeout, retries)
    if threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    report = run_chain(events, finders, option, url=url, weights_dir=weights, out=out,
                       resume=resume, plots=plots, timeout_s=timeout, retries=retries,
                       num_threads=threads, tls=tls, on_line=None if json_out else typer.echo)
    finish_run(report.errors, report.summary, report.exit_code, json_out)
