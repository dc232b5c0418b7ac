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
    threads: Annotated[int | None, typer.Option(
        help="Torch intra-op threads of every model instance (0: torch's default, one per "
             "core) [default: the repository's, 1].")] = None,
    device: Annotated[str | None, typer.Option(
        help="Where the models compute: cpu, or cuda (GPU instances on the GPU of each "
             "instance; build and label too) [default: the repository's, cpu].")] = None,
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
    inference_key: Annotated[str, typer.Option(
        help="Inference that needs the key: http (default; Triton's HTTP JSON parsing can be "
             "crashed by one request), all (gRPC too), none.")] = "http",
    http_host: Annotated[str, typer.Option(
        help="Address of the HTTP and metrics endpoints, which Triton cannot encrypt "
             "(default: this host only, whatever --host is).")] = "127.0.0.1",
    tls_cert: Annotated[Path | None, typer.Option(
        help="PEM certificate of the server: gRPC over TLS (with --tls-key).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")]
    = None,
    tls_ca: Annotated[Path | None, typer.Option(
        help="PEM CA of client certificates: mutual TLS, clients without one signed by it "
             "are refused.")] = None,
) -> None:
    """Run NVIDIA Triton with the pipeline's models in the foreground until interrupted."""
    from exatrkx.errors import InputError
    from exatrkx.serve import RepositoryConfig, ServerConfig
    from exatrkx.serve.foreground import serve_forever
    from exatrkx.serve.keys import is_loopback, restriction
    from exatrkx.serve.tls import ServerTls

    settings: dict[str, Any] = {}
    if instances is not None:
        settings["instances"] = instances
    if batching is not None:
        settings["dynamic_batching"] = batching
    if threads is not None:
        settings["torch_threads"] = threads
    if device is not None:
        settings["device"] = device

    restricted, http_restricted = restriction(inference_key, open_control)
    if (tls_cert is None) != (tls_key is None):
        raise InputError("TLS needs both --tls-cert and --tls-key")
    if tls_ca is not None and tls_cert is None:
        raise InputError("--tls-ca (mutual TLS) needs --tls-cert and --tls-key")
    tls = ServerTls(tls_cert, tls_key, tls_ca) if tls_cert and tls_key else None
    if not is_loopback(host):
        gaps = ([] if tls else ["unencrypted"]) + (
            [] if "inference" in restricted else ["gRPC inference needs no key"])
        if gaps:
            typer.echo(f"warning: --host {host} exposes gRPC beyond this machine: "
                       f"{', '.join(gaps)} (see docs/security.md)", err=True)
    if not is_loopback(http_host):
        typer.echo(f"warning: --http-host {http_host} exposes HTTP and metrics beyond this "
                   "machine, unencrypted (Triton has no TLS for them; see docs/security.md)",
                   err=True)
    serve_forever(repository, weights,
                  ServerConfig(host=host, grpc_port=grpc_port, http_port=http_port,
                               metrics_port=metrics_port, log_verbose=log_verbose,
                               api_key=os.environ.get(API_KEY_ENV) or None,
                               restricted=restricted, http_restricted=http_restricted,
                               http_host=http_host, tls=tls),
                  dataclasses.replace(RepositoryConfig(max_hits=max_hits), **settings),
                  echo=lambda line: typer.echo(line))
