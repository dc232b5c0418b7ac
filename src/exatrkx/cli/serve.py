"""``exatrkx serve``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from exatrkx.cli.app import app, user_errors
from exatrkx.contract import API_KEY_ENV, DEFAULT_MAX_HITS, DEFAULT_PORTS


@app.command()
@user_errors
def serve(
    repository: Annotated[Path | None, typer.Option(
        help="Model repository: served as is if it holds models, else written there "
             "(default: a temporary one).")] = None,
    weights: Annotated[Path | None, typer.Option(
        help="Weights folder or shipped set name (default: the shipped weights).")] = None,
    grpc_port: Annotated[int, typer.Option(help="gRPC port.")] = DEFAULT_PORTS["grpc"],
    http_port: Annotated[int, typer.Option(help="HTTP port.")] = DEFAULT_PORTS["http"],
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")]
    = DEFAULT_PORTS["metrics"],
    instances: Annotated[int | None, typer.Option(
        help="Instances of every model [default: the repository's, the study's best served "
             "setting].")] = None,
    batching: Annotated[bool | None, typer.Option(
        "--batching/--no-batching",
        help="Triton's dynamic batcher on every model: several events per execution, run as "
             "one disjoint graph [default: the repository's, the study's best served "
             "setting].")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (default: this host only; "
                                           "0.0.0.0 exposes the service to the network).")]
    = "127.0.0.1",
    max_hits: Annotated[int, typer.Option(help="Refuse events with more hits.")]
    = DEFAULT_MAX_HITS,
    log_verbose: Annotated[int, typer.Option(help="Triton log verbosity.")] = 0,
    open_control: Annotated[bool, typer.Option(
        "--open-control", help="Serve the statistics, shared-memory, trace, logging and "
                               "repository APIs without a key (default: they need the key "
                               "of $EXATRKX_API_KEY, else a random one that is printed).")]
    = False,
) -> None:
    """Run NVIDIA Triton with the pipeline's models in the foreground until interrupted."""
    from exatrkx.serve import RepositoryConfig, ServerConfig
    from exatrkx.serve.foreground import serve_forever
    from exatrkx.serve.keys import RESTRICTED_APIS, is_loopback

    settings: dict[str, Any] = {}
    if instances is not None:
        settings["instances"] = instances
    if batching is not None:
        settings["dynamic_batching"] = batching

    if not is_loopback(host):
        typer.echo(f"warning: --host {host} exposes the service beyond this machine: "
                   "unencrypted, and inference needs no key (see docs/security.md)", err=True)
    serve_forever(repository, weights,
                  ServerConfig(host=host, grpc_port=grpc_port, http_port=http_port,
                               metrics_port=metrics_port, log_verbose=log_verbose,
                               api_key=os.environ.get(API_KEY_ENV) or None,
                               restricted=() if open_control else RESTRICTED_APIS),
                  dataclasses.replace(RepositoryConfig(max_hits=max_hits), **settings),
                  echo=lambda line: typer.echo(line))
