"""Options shared by the commands that talk to a server, and the way such a run ends.

``@client_tls_options`` gives a command ``--tls-ca``, ``--tls-cert``, ``--tls-key`` and
``--tls-server-name`` and hands it one ``tls`` argument instead (a
:class:`~exatrkx.service.tls.ClientTls`, or None for plain text)::

    @app.command()
    @user_errors
    @client_tls_options
    def chain(..., tls: ClientTls | None = None) -> None:
        ...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

#: ``--json``: one JSON object, printed last (reconstruct, chain).
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object only, as the "
                                                      "last line.")]
#: ``--timeout`` of a request to the server.
Timeout = Annotated[float, typer.Option(help="Seconds before a request to the server times "
                                             "out (options 1-5).")]
#: ``--retries`` of a request that failed for a passing reason.
Retries = Annotated[int, typer.Option(help="Resends of a request that failed for a reason "
                                           "that may pass (options 1-5).")]



def check_request_options(timeout: float, retries: int) -> None:
    """Refuse a ``--timeout`` that is not positive and negative ``--retries``.

    Raises:
        InputError: naming the option.
    """
    from exatrkx.errors import InputError

    if timeout <= 0:
        raise InputError(f"--timeout must be positive, got {timeout}")
    if retries < 0:
        raise InputError(f"--retries must be >= 0, got {retries}")


def finish_run(errors: Sequence[str], summary: Mapping[str, Any], exit_code: int,
               json_out: bool) -> None:
    """End a run over events: each error on stderr, the summary as the last line with
    ``--json``, and the run's exit code (0: return).

    Raises:
        typer.Exit: with ``exit_code`` when it is not 0.
    """
    from exatrkx.util.jsonsafe import dumps

    for message in errors:
        typer.echo(f"error: {message}", err=True)
    if json_out:
        typer.echo(dumps(summary))
    if exit_code:
        raise typer.Exit(exit_code)


#: name -> (type, help) of the options :func:`client_tls_options` adds.
_TLS_OPTIONS: dict[str, tuple[Any, str]] = {
    "tls_ca": (Path, "PEM CA the server's certificate must be signed by: gRPC over TLS "
                     "(options 1-5)."),
    "tls_cert": (Path, "PEM client certificate, for a server that asks for one (mutual "
                       "TLS; with --tls-key)."),
    "tls_key": (Path, "PEM private key of --tls-cert."),
    "tls_server_name": (str, "Name the server's certificate must carry, when it is not the "
                             "host of --url (e.g. through a tunnel)."),
}


def client_tls(tls_ca: Path | None = None, tls_cert: Path | None = None,
               tls_key: Path | None = None, tls_server_name: str | None = None) -> Any:
    """The :class:`~exatrkx.service.tls.ClientTls` of the options, or None (plain text)
    when none is given.

    Raises:
        InputError: unusable files (see :class:`~exatrkx.service.tls.ClientTls`).
    """
    if tls_ca is None and tls_cert is None and tls_key is None:
        if tls_server_name is not None:
            from exatrkx.errors import InputError

            raise InputError("--tls-server-name needs TLS (--tls-ca)")
        return None
    from exatrkx.service.tls import ClientTls

    return ClientTls(tls_ca, tls_cert, tls_key, tls_server_name)


def client_tls_options(func: F) -> F:
    """Add the client TLS options to a command; it receives ``tls`` (see the module)."""
    signature = inspect.signature(func, eval_str=True)
    params = [p for p in signature.parameters.values() if p.name != "tls"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=Annotated[kind | None,
                                                    typer.Option(help=text,
                                                                 show_default=False)])
             for name, (kind, text) in _TLS_OPTIONS.items()]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name, None) for name in _TLS_OPTIONS}
        return func(*args, tls=client_tls(**given), **kwargs)

    new_signature = signature.replace(parameters=params + added)
    wrapper.__signature__ = new_signature  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in new_signature.parameters.values()}
    if signature.return_annotation is not inspect.Signature.empty:
        wrapper.__annotations__["return"] = signature.return_annotation
    del wrapper.__wrapped__  # typer must read the new signature
    return wrapper  # type: ignore[return-value]
