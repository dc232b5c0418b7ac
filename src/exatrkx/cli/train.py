"""``exatrkx train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exatrkx.cli.app import app, user_errors
from exatrkx.errors import InputError


@app.command()
@user_errors
def train(
    out: Annotated[Path, typer.Option(help="Output weights folder.")] = Path("weights"),
    data: Annotated[list[Path] | None, typer.Option(
        help="Folder of TrackML events with truth to train on; repeat for several "
             "(default: simulate HNL events).")] = None,
    recipe: Annotated[str | None, typer.Option(
        help="Named recipe: default (events without pileup) or pu200 (200 pileup "
             "interactions; needs --data).")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue an interrupted run from the checkpoint in --out.")] = False,
    quick: Annotated[bool, typer.Option(help="A smoke model in about a minute.")] = False,
    events: Annotated[int | None, typer.Option(help="Training events to simulate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Simulation seed of the training events.")]
    = None,
    pileup: Annotated[float | None, typer.Option(help="Mean pileup of training events.")]
    = None,
    gnn_epochs: Annotated[int | None, typer.Option(help="Passes of the GNN training.")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch threads (1 is faster on a busy "
                                                     "machine).")] = None,
    edge_pt: Annotated[float | None, typer.Option(
        help="pT (GeV) below which the filter and GNN learn a particle's edges as false "
             "(0 = all true).")] = None,
    signal_weight: Annotated[float | None, typer.Option(
        help="Weight of the true edges of particles above 1 GeV in the filter and GNN "
             "losses.")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress.")] = True,
) -> None:
    """Train the embedding, filter and GNN nets and choose radius and cuts."""
    from exatrkx.train import run_train

    if events is not None and events < 1:
        raise InputError(f"--events must be positive, got {events}")
    if edge_pt is not None and not edge_pt >= 0:
        raise InputError(f"--edge-pt must be >= 0, got {edge_pt}")
    if signal_weight is not None and not signal_weight >= 1:
        raise InputError(f"--signal-weight must be >= 1, got {signal_weight}")
    if recipe == "pu200" and not data:
        raise InputError("--recipe pu200 trains on events with pileup: give them with --data "
                         "(exatrkx simulate --source ttbar --pileup 200 ...)")
    run_train(out, data=data or None, quick=quick, progress=progress, recipe=recipe,
              resume=resume,
              overrides={"train_events": events, "seed": seed, "pileup": pileup,
                         "gnn_epochs": gnn_epochs, "threads": threads,
                         "edge_pt": edge_pt, "signal_weight": signal_weight})
