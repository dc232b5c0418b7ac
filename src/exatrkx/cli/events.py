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
    source: Annotated[str, typer.Option(help="Event source: hnl, ttbar, minbias or gun.")]
    = "hnl",
    events: Annotated[int, typer.Option(help="Number of events.")] = 10,
    pileup: Annotated[float, typer.Option(help="Mean number of minimum-bias interactions "
                                               "overlaid (Poisson).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same events).")] = 1,
    first_event: Annotated[int, typer.Option(help="Number of the first event.")] = 0,
    noise: Annotated[float, typer.Option(help="Noise hits as a fraction of real hits.")] = 0.0,
    min_momentum: Annotated[float | None, typer.Option(
        help="Simulate particles above this momentum, GeV [default: 0.5 for hnl without "
             "pileup, as the shared sample; else 0.05, keeping loopers and soft pileup].")]
    = None,
    neutral: Annotated[bool | None, typer.Option(
        "--neutral/--charged-only", help="Simulate neutral particles too [default: not for "
                                         "hnl without pileup].", show_default=False)] = None,
    max_eta: Annotated[float | None, typer.Option(
        help="Simulate generator particles within this |eta| [default: 4 for hnl without "
             "pileup, else no cut].")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Simulate events with ACTS (Pythia 8 or a particle gun, Fatras in the generic detector,
    digitization, spacepoints) and write TrackML-style hits/particles/truth CSV files."""
    from exatrkx.errors import InputError
    from exatrkx.sim.simulate import SimConfig, run_simulate

    if min_momentum is not None and not min_momentum > 0:
        raise InputError(f"--min-momentum must be positive, got {min_momentum}")
    if max_eta is not None and not max_eta > 0:
        raise InputError(f"--max-eta must be positive, got {max_eta}")
    config = SimConfig(min_momentum=min_momentum, neutral=neutral, max_eta=max_eta)
    run_simulate(source=source, n_events=events, seed=seed, out=out, pileup=pileup,
                 first_event=first_event, noise=noise, progress=progress, config=config)


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
