"""Start and stop the ``tritonserver`` binary that ships in the ``nvidia-pytriton`` wheel.

The binary runs in place; only the backends folder is copied into a scratch directory, so that
the Python-backend stub matching this interpreter can be put beside ``libtriton_python.so``.
The server runs in its own process group, so stopping it also ends every backend stub.

Security defaults (see ``docs/security.md``): the endpoints listen on ``127.0.0.1``, and
the HTTP and metrics endpoints (which Triton cannot encrypt) stay there even when gRPC listens
elsewhere, unless :attr:`ServerConfig.http_host` says otherwise; models cannot be loaded or
unloaded over the network (``--model-control-mode=none``); the control APIs (model
repository, shared memory, statistics, trace, logging) and HTTP inference answer only
requests that carry the server's key (:mod:`exatrkx.serve.keys`; HTTP inference because
Triton 2.51's JSON parser can be crashed by one request). The key is random per server unless
given; :attr:`TritonServer.api_key` holds it. With :attr:`ServerConfig.tls` gRPC is TLS
(:mod:`exatrkx.serve.tls`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from exatrkx.contract import API_KEY_HEADER, DEFAULT_PORTS
from exatrkx.errors import InputError, ServerError
from exatrkx.serve.binary import server_environment, tritonserver_paths
from exatrkx.serve.keys import (
    HTTP_RESTRICTED_APIS,
    KNOWN_APIS,
    RESTRICTED_APIS,
    check_api_key,
    new_api_key,
)
from exatrkx.serve.tls import ServerTls
from exatrkx.service.transport import probe_ready
from exatrkx.util.procfs import group_processes


@dataclass(frozen=True)
class ServerConfig:
    """How to run the server.

    Attributes:
        host: address the gRPC endpoint listens on.
        grpc_port: gRPC port (0: pick a free one).
        http_port: HTTP port (0: pick a free one).
        metrics_port: Prometheus metrics port (0: pick a free one).
        log_verbose: Triton's ``--log-verbose`` level.
        startup_timeout: seconds to wait for ``/v2/health/ready``.
        exit_timeout: seconds Triton may take to finish in-flight requests when stopping.
        extra_args: more ``tritonserver`` arguments, passed as given.
        env: more environment variables for the server and its stubs.
        api_key: key of the restricted APIs (None: a random one per server).
        restricted: the APIs behind the key on both protocols (empty: none).
        http_restricted: more APIs behind the key on HTTP only (default: inference, whose
            JSON parsing a single request can crash in Triton 2.51).
        http_host: address the HTTP and metrics endpoints listen on (None: ``127.0.0.1``
            whatever ``host`` is: Triton has no TLS for them).
        tls: TLS of the gRPC endpoint (None: plain text).
    """

    host: str = "127.0.0.1"
    grpc_port: int = DEFAULT_PORTS["grpc"]
    http_port: int = DEFAULT_PORTS["http"]
    metrics_port: int = DEFAULT_PORTS["metrics"]
    log_verbose: int = 0
    startup_timeout: float = 120.0
    exit_timeout: int = 5
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None
    restricted: tuple[str, ...] = RESTRICTED_APIS
    http_restricted: tuple[str, ...] = HTTP_RESTRICTED_APIS
    http_host: str | None = None
    tls: ServerTls | None = None

    def __post_init__(self) -> None:
        unknown = sorted((set(self.restricted) | set(self.http_restricted)) - set(KNOWN_APIS))
        if unknown:
            raise InputError(f"unknown Triton API(s) to restrict: {', '.join(unknown)} "
                             f"(known: {', '.join(KNOWN_APIS)})")
        if self.api_key is not None:
            check_api_key(self.api_key)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` different TCP ports that are free right now on ``host``."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))  # held open until all are chosen: no duplicates
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    return free_ports(1, host)[0]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to send SIGTERM to the server when the process that started it dies, so
    that a killed client leaves no server behind (the stubs follow their server)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _stub_regions(pgid: int) -> list[str]:
    """Shared-memory regions of the backend stubs in a process group (from their command
    lines: the stub is started with its region's name)."""
    return [a for proc in group_processes(pgid) for a in proc.args
            if re.fullmatch(r"triton_python_backend_shm_region_[\w-]+", a)]


def _stub_pids(pgid: int) -> list[int]:
    """Live (not zombie) backend stub processes of a process group."""
    return sorted(proc.pid for proc in group_processes(pgid)
                  if proc.program == "triton_python_backend_stub"
                  and proc.state not in ("Z", "X"))


class TritonServer:
    """A running ``tritonserver`` serving one model repository (a context manager).

    Example::

        with TritonServer(repo, ServerConfig(grpc_port=0, http_port=0, metrics_port=0)) as srv:
            print(srv.grpc_url)

    Args:
        repository: the model repository folder.
        config: ports, host and timeouts; a port of 0 means "pick a free one".
        workdir: scratch folder for the backends copy and the log (a temp dir if None).
    """

    def __init__(self, repository: str | Path, config: ServerConfig | None = None,
                 workdir: str | Path | None = None) -> None:
        self.repository = Path(repository).resolve()
        if not self.repository.is_dir():
            raise InputError("model repository folder does not exist", self.repository)
        cfg = config or ServerConfig()
        self.host = cfg.host
        self.http_host = cfg.http_host or "127.0.0.1"
        bind = "0.0.0.0" if cfg.host in ("0.0.0.0", "") else cfg.host
        spare = free_ports(3, bind)
        self.grpc_port = cfg.grpc_port or spare[0]
        self.http_port = cfg.http_port or spare[1]
        self.metrics_port = cfg.metrics_port or spare[2]
        self.config = cfg
        self.api_key: str | None = ((cfg.api_key or new_api_key())
                                    if cfg.restricted or cfg.http_restricted else None)
        self._own_workdir = workdir is None
        self.workdir = (Path(workdir) if workdir
                        else Path(tempfile.mkdtemp(prefix="exatrkx-triton-")))
        self.log_path = self.workdir / "tritonserver.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stubs: list[int] = []

    # ------------------------------------------------------------------ endpoints

    @staticmethod
    def _client_host(host: str) -> str:
        return "127.0.0.1" if host in ("0.0.0.0", "") else host

    @property
    def grpc_url(self) -> str:
        """``host:port`` of the gRPC endpoint (tritonclient's form)."""
        return f"{self._client_host(self.host)}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """``host:port`` of the HTTP endpoint (tritonclient's form)."""
        return f"{self._client_host(self.http_host)}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        """Full URL of the Prometheus metrics (they listen where HTTP does)."""
        return f"http://{self._client_host(self.http_host)}:{self.metrics_port}/metrics"

    @property
    def tls(self) -> ServerTls | None:
        """TLS of the gRPC endpoint (None: plain text)."""
        return self.config.tls

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers that open the restricted APIs (empty when none are restricted)."""
        return {API_KEY_HEADER: self.api_key} if self.api_key else {}

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    # ------------------------------------------------------------------ lifecycle

    def command(self, backends: Path) -> list[str]:
        """The ``tritonserver`` command line for a prepared backends folder."""
        binary = tritonserver_paths()[0]
        cfg = self.config
        return [
            str(binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backends}",
            f"--http-address={self.http_host}",
            f"--grpc-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            "--model-control-mode=none",
            "--disable-auto-complete-config",
            "--strict-readiness=true",
            "--exit-on-error=true",
            f"--exit-timeout-secs={cfg.exit_timeout}",
            f"--log-verbose={cfg.log_verbose}",
            *self._restriction_args(),
            *(cfg.tls.args() if cfg.tls is not None else []),
            *cfg.extra_args,
        ]

    def _restriction_args(self) -> list[str]:
        if not self.api_key:
            return []
        cfg = self.config
        http = [*cfg.restricted, *(a for a in cfg.http_restricted if a not in cfg.restricted)]
        flags = []
        if cfg.restricted:
            flags.append(f"--grpc-restricted-protocol={','.join(cfg.restricted)}:"
                         f"{API_KEY_HEADER}={self.api_key}")
        # Triton 2.51 spells the HTTP flag "restricted-api"
        flags.append(f"--http-restricted-api={','.join(http)}:{API_KEY_HEADER}={self.api_key}")
        return flags

    def _prepare_backends(self) -> Path:
        _, backends_src, stub, _ = tritonserver_paths()
        backends = self.workdir / "backends"
        if not (backends / "python" / stub.name).exists():
            shutil.copytree(backends_src, backends, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copy2(stub, backends / "python" / stub.name)
        return backends

    def environment(self) -> dict[str, str]:
        """Environment of the server (see :func:`exatrkx.serve.binary.server_environment`)."""
        return server_environment(self.config.env)

    def start(self) -> TritonServer:
        """Start the server and wait until it is ready.

        Raises:
            ServerError: it exited or did not become ready in time (with its log tail).
        """
        if self._proc is not None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        backends = self._prepare_backends()
        with open(self.log_path, "wb") as log:  # the child keeps its own descriptor
            self._proc = subprocess.Popen(self.command(backends), stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          env=self.environment(), start_new_session=True,
                                          preexec_fn=_die_with_parent)
        try:
            self.wait_ready(self.config.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self._stubs = self.stub_pids()
        return self

    def stub_pids(self) -> list[int]:
        """Pids of the server's live backend stub processes (one per model instance)."""
        return [] if self._proc is None else _stub_pids(self._proc.pid)

    def dead_stubs(self) -> list[int]:
        """Stubs that ran when the server became ready and are gone now.

        Triton 2.51 does not restart a Python-backend stub that died: every later request
        to its model instance fails ("Stub process ... is not healthy") while the server
        still reports ready. :meth:`restart` is the way back.
        """
        alive = set(self.stub_pids())
        return [pid for pid in self._stubs if pid not in alive]

    def restart(self) -> TritonServer:
        """Stop the server (stubs included) and start it again on the same ports."""
        self.stop()
        return self.start()

    def is_ready(self) -> bool:
        """True when the server answers ready (HTTP ``/v2/health/ready``)."""
        return probe_ready(self.http_url, "http", timeout_s=1.0)

    def wait_ready(self, timeout: float) -> None:
        """Poll readiness; fail fast when the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise ServerError(f"tritonserver exited (code {code}) before it was ready:\n"
                                  + self.log_tail())
            if self.is_ready():
                return
            if time.monotonic() > deadline:
                raise ServerError(f"tritonserver not ready after {timeout:.0f} s:\n"
                                  + self.log_tail())
            time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        """The server log's error lines (``E<date>``) and then its last ``lines`` lines."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        # the E lines, and the line that names an unknown option (the usage text follows it)
        errors = [ln for ln in text[:-lines]
                  if re.match(r"E\d{4} ", ln) or "unrecognized option" in ln][-20:]
        return "\n".join(errors + text[-lines:])

    def poll(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for the server to exit; its exit code, or None."""
        if self._proc is None:
            return 0
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def wait(self) -> int:
        """Block until the server exits; returns its exit code."""
        if self._proc is None:
            return 0
        return self._proc.wait()

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully (SIGTERM), then kill the whole process group (stubs included)."""
        proc = self._proc
        if proc is None:
            return
        timeout = self.config.exit_timeout + 5.0 if timeout is None else timeout
        pgid = proc.pid
        regions = _stub_regions(pgid)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                proc.wait()
        # stubs left over (they share the server's process group)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        self._proc = None
        # a killed stub cannot unlink its shared-memory region; do it for it
        deadline = time.monotonic() + 5.0
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        for region in regions:
            with contextlib.suppress(OSError):
                (Path("/dev/shm") / region).unlink()

    def cleanup(self) -> None:
        """Stop and remove the scratch folder when this object made it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()


def port_in_use(host: str, port: int) -> bool:
    """True when ``port`` cannot be bound on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


