"""``exatrkx reconstruct``."""

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


@app.command()
@user_errors
@client_tls_options
def reconstruct(
    events: Annotated[Path, typer.Option(help="Events: a directory, a file or a TrackML "
                                              "prefix (TrackML, ACTS spacepoints or "
                                              "3-column feature CSVs).")],
    option: Annotated[int, typer.Option(help="Service option 0-5 (0: in process).")] = 0,
    url: Annotated[str | None, typer.Option(help="Triton HOST:PORT (options 1-5).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write <event>-tracks.csv here.")] = None,
    evaluate: Annotated[bool, typer.Option(help="Print physics metrics (needs truth).")]
    = False,
    plots: Annotated[Path | None, typer.Option(help="Write efficiency plots here "
                                                    "(implies --evaluate).")] = None,
    json_out: JsonOut = False,
    weights: Annotated[Path | None, typer.Option(help="Weights folder or shipped set name "
                                                      "(default: the shipped weights).")]
    = None,
    device: Annotated[str, typer.Option(help="Torch device of the local stages.")] = "cpu",
    threads: Annotated[int, typer.Option(help="Torch threads.")] = 1,
    resume: Annotated[bool, typer.Option(help="Skip events whose tracks file exists in "
                                              "--out (after an interrupted run).")] = False,
    timeout: Timeout = 60.0,
    retries: Retries = 2,
    tls: Any = None,
) -> None:
    """Find tracks in events; optionally write them and evaluate against truth.

    Options 1-5 send the key of $EXATRKX_API_KEY with every request, over TLS with --tls-ca.
    Exit code 2: an event was bad input; 3: the server was unavailable, refused (key, TLS)
    or failed (see README).
    """
    from exatrkx.service.reconstruct import reconstruct_events

    check_request_options(timeout, retries)
    report = reconstruct_events(events, option, url=url, out=out, evaluate=evaluate,
                                plots=plots, weights_dir=weights, device=device,
                                num_threads=threads,
                                on_line=None if json_out else typer.echo, resume=resume,
                                timeout_s=timeout, retries=retries, tls=tls)
    finish_run(report.errors, report.summary, report.exit_code, json_out)
