"""The servers the study times: the embedded one (started and stopped here) or a given one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from exatrkx.contract import DEFAULT_PORTS
from exatrkx.serve import RepositoryConfig, ServerConfig, TritonServer, write_repository
from exatrkx.service.transport import ClientConfig, Transport
from exatrkx.study.config import StudyConfig
from exatrkx.study.results import Endpoint


@contextlib.contextmanager
def embedded_server(weights: Path | None, scratch: Path, instances: int, batching: bool,
                    threads: int, floors: bool = False,
                    **overrides: Any) -> Iterator[Endpoint]:
    """Write a repository and run Triton on free ports; stopped (stubs included) on exit.

    The other settings are the repository's defaults unless ``overrides`` (fields of
    :class:`~exatrkx.serve.RepositoryConfig`) say otherwise; ``floors`` adds the floor
    models."""
    settings = RepositoryConfig(instances=instances, dynamic_batching=batching,
                                torch_threads=threads, libtorch_variant=False, floors=floors,
                                **overrides)
    folder = tempfile.mkdtemp(prefix=f"models-{instances}-{int(batching)}-", dir=scratch)
    repo = write_repository(Path(folder) / "models", weights, settings)
    # control APIs open: perf_analyzer cannot send the key over gRPC (loopback server)
    config = ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=300,
                          exit_timeout=2, restricted=())
    with TritonServer(repo, config) as server:
        # the key opens HTTP inference (Triton's HTTP JSON parsing must not be open)
        yield Endpoint(server.grpc_url, server.http_url, server.pid, instances, batching,
                       server.metrics_url, settings.device, api_key=server.api_key)


def external_endpoint(cfg: StudyConfig) -> Endpoint:
    """The server given by ``cfg.url`` (and ``cfg.http_url``).

    Raises:
        ServerUnavailable: it does not answer ready over gRPC, or refuses the connection.
    """
    grpc_url = ClientConfig(url=cfg.url).address
    http_url = (ClientConfig(url=cfg.http_url, protocol="http").address if cfg.http_url
                else f"{grpc_url.rsplit(':', 1)[0]}:{DEFAULT_PORTS['http']}")
    with Transport(ClientConfig(url=grpc_url, tls=cfg.tls, timeout_s=10, retries=0)) as probe:
        probe.check_ready()
    return Endpoint(grpc_url, http_url, tls=cfg.tls)


def machine_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
