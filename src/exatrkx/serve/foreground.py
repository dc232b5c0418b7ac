"""``exatrkx serve``: Triton in the foreground until interrupted, restarted when a backend
process dies."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from exatrkx.contract import API_KEY_ENV
from exatrkx.errors import InputError, ServerError
from exatrkx.serve.launcher import ServerConfig, TritonServer, port_in_use
from exatrkx.serve.repository import RepositoryConfig, repository_models, write_repository


class _Stop(Exception):
    """Raised by the SIGTERM handler of :func:`serve_forever`."""


def serve_forever(repository: str | Path | None, weights_dir: str | Path | None,
                  server_config: ServerConfig, repo_config: RepositoryConfig | None = None,
                  echo: Callable[[str], None] = print,
                  restart_on_stub_failure: bool = True) -> int:
    """Run the server in the foreground until SIGINT/SIGTERM; returns the exit code.

    With ``restart_on_stub_failure``, a backend process that dies (Triton would answer its
    model with errors from then on) makes the server restart, on the same ports.

    ``repository``: ``None`` writes the repository to a temporary folder (removed at exit);
    a folder that already holds models is served as it is; any other folder is written.

    Raises:
        InputError: a port is taken; ServerError: the server failed to start or died.
    """
    http_host = server_config.http_host or "127.0.0.1"
    for name, port, host in (("gRPC", server_config.grpc_port, server_config.host),
                             ("HTTP", server_config.http_port, http_host),
                             ("metrics", server_config.metrics_port, http_host)):
        if port and port_in_use(host, port):
            raise InputError(f"{name} port {port} is already in use on {host}")
    settings = repo_config or RepositoryConfig()
    scratch: Path | None = None
    if repository is None:
        scratch = Path(tempfile.mkdtemp(prefix="exatrkx-repo-"))
        repo = write_repository(scratch / "models", weights_dir, settings,
                                libtorch_variant=False)
    elif Path(repository).is_dir() and repository_models(repository):
        repo = Path(repository)
        echo(f"serving the existing model repository {repo}")
    else:
        repo = write_repository(repository, weights_dir, settings)
        echo(f"wrote the model repository {repo}")

    def on_term(signum: int, frame: object) -> None:
        raise _Stop

    # SIGINT too: a server started in the background (``&``, nohup) inherits SIGINT ignored
    previous = {sig: signal.signal(sig, on_term) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = TritonServer(repo, server_config)
    try:
        server.start()
        echo(f"models: {', '.join(repository_models(repo))}")
        tls = server.tls
        echo(f"gRPC:    {server.grpc_url}" + (
            "" if tls is None else " (TLS" + (", client certificates of "
                                              f"{tls.ca}" if tls.ca else "") + ")"))
        echo(f"HTTP:    {server.http_url}" + (" (plain text)" if tls is not None else ""))
        echo(f"metrics: {server.metrics_url}")
        if server.api_key and server_config.api_key is None:
            echo(f"API key: {server.api_key} (clients: export {API_KEY_ENV}=<key>)")
        echo("ready (Ctrl-C to stop)")
        while True:
            code = server.poll(1.0)
            if code is not None:
                raise ServerError(f"tritonserver exited unexpectedly (code {code}):\n"
                                  + server.log_tail())
            dead = server.dead_stubs()
            if dead and restart_on_stub_failure:
                echo(f"warning: backend process(es) {', '.join(map(str, dead))} died; "
                     "restarting the server")
                t0 = time.monotonic()
                server.restart()
                echo(f"ready again after {time.monotonic() - t0:.1f} s")
    except (KeyboardInterrupt, _Stop):
        echo("stopping")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.cleanup()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
