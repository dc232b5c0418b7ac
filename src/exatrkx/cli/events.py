"""``exatrkx simulate`` and ``exatrkx show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exatrkx.cli.app import app, user_errors


@app.command()
@user_errors
def simulate(
    out: Annotated[Path, typer.Option(help="Output directory for TrackML CSV files.")],
    source: Annotated[str, typer.Option(help="Event source: hnl, gun or minbias.")] = "hnl",
    events: Annotated[int, typer.Option(help="Number of events.")] = 10,
    pileup: Annotated[float, typer.Option(help="Mean number of minimum-bias interactions "
                                               "overlaid (Poisson).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same events).")] = 1,
    first_event: Annotated[int, typer.Option(help="Number of the first event.")] = 0,
    noise: Annotated[float, typer.Option(help="Noise hits as a fraction of real hits.")] = 0.0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Simulate events and write TrackML-style hits/particles/truth CSV files."""
    from exatrkx.sim.simulate import run_simulate

    run_simulate(source=source, n_events=events, seed=seed, out=out, pileup=pileup,
                 first_event=first_event, noise=noise, progress=progress)


@app.command()
@user_errors
def show(
    event: Annotated[Path, typer.Argument(help="Event file, TrackML prefix or directory.")],
    out: Annotated[Path, typer.Option(help="Output PNG file.")] = Path("event.png"),
) -> None:
    """Draw an event's hits (x-y and r-z views), coloured by particle when truth exists."""
    from exatrkx.io import event_sources, read_event
    from exatrkx.physics.display import plot_event

    ev = read_event(event_sources(event)[0])
    plot_event(ev, out)
    typer.echo(f"wrote {out} ({ev.num_hits} hits)")
