"""The ``exatrkx`` command: one module per command group, registered on one Typer app.

Commands import what they need when they run, not at start-up: the heavy imports (torch,
the Triton client, matplotlib, Pythia, ACTS) would make ``exatrkx --help`` take seconds.
``exatrkx chain`` imports the ACTS chain (:mod:`exatrkx.acts.app`, pyacts and the detector)
when it runs, for the same reason.
"""

from __future__ import annotations

from exatrkx.cli import chain, events, perf, reconstruct, serve, study, train
from exatrkx.cli.app import app

__all__ = ["app", "main"]
_COMMANDS = (chain, events, perf, reconstruct, serve, study, train)


def main() -> None:  # pragma: no cover - console entry point
    app()
