"""``exatrkx export-perf-data``: events as perf_analyzer's input data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exatrkx.cli.app import app, user_errors
from exatrkx.contract import FEATURES
from exatrkx.errors import InputError


@app.command("export-perf-data")
@user_errors
def export_perf_data_command(
    events: Annotated[Path, typer.Option(help="Event file or directory (any input format).")],
    out: Annotated[Path, typer.Option(help="perf_analyzer JSON input data file to write.")],
    max_events: Annotated[int | None, typer.Option(help="Export at most this many events.")]
    = None,
    input_name: Annotated[str, typer.Option(help="Model input name.")] = FEATURES,
) -> None:
    """Write events as perf_analyzer's JSON input data (--input-data FILE)."""
    from exatrkx.io import event_sources, read_event
    from exatrkx.study.perf import export_perf_data

    if max_events is not None and max_events < 1:
        raise InputError(f"--max-events must be positive, got {max_events}")
    sources = event_sources(events)[:max_events]
    path = export_perf_data([read_event(s) for s in sources], out, input_name)
    typer.echo(f"wrote {len(sources)} events to {path}")
