"""The ``exatrkx`` Typer application and its error handling.

Every command turns an :class:`~exatrkx.errors.ExatrkxError` into one line on stderr and
the error's exit code (2 bad input, 3 server unavailable, refusing or failing), never a
traceback; Ctrl-C exits with 130.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from exatrkx.core.allocator import tune_allocator
from exatrkx.errors import ExatrkxError

# gRPC core logs a failed TLS handshake on stderr at INFO level; the command line reports
# every failure in one line of its own (set before any command imports grpc)
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="ExaTrkX GNN track finding, in-process and served by NVIDIA Triton.")

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(func: F) -> F:
    """Turn the package's errors (and a Ctrl-C) into a one-line message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ExatrkxError as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            fail(message, exc.exit_code)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _process_setup() -> None:
    # runs before every command, any of which may run pipeline stages in this process
    tune_allocator()
