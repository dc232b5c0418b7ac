"""The ``exatrkx`` command.

Every command turns an :class:`~exatrkx.errors.InputError` into one line on stderr and exit
code 2, never a traceback. Heavy imports happen inside the commands so that ``--help`` is fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from exatrkx.errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="ExaTrkX GNN track finding, in-process and served by NVIDIA Triton.")

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> None:
    """Print one line to stderr and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def user_errors(func: F) -> F:
    """Turn InputError (and a Ctrl-C) into a one-line message and exit code 2 (130)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def main() -> None:  # pragma: no cover - console entry point
    app()


# ---------------------------------------------------------------------------- simulate / show

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
    from exatrkx.simulate import run_simulate

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
    from exatrkx.plotting import plot_event

    ev = read_event(event_sources(event)[0])
    plot_event(ev, out)
    typer.echo(f"wrote {out} ({ev.num_hits} hits)")


if __name__ == "__main__":  # pragma: no cover
    main()
