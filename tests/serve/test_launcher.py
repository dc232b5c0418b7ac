"""The server launcher on a floor-only repository (starts in seconds): readiness, a
request, clean shutdown with no stub left, start failures, the ``exatrkx serve`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from exatrkx.errors import ServerError
from exatrkx.serve import ServerConfig, TritonServer, free_ports
from exatrkx.serve.launcher import _stub_regions
from exatrkx.serve.repository import write_floor_repository
from exatrkx.service.transport import ClientConfig, Transport

pytestmark = pytest.mark.server


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_request_stop_leaves_nothing(tmp_path: Path,
                                           find_stubs: Callable[[str], list[int]]) -> None:
    repo = write_floor_repository(tmp_path / "floor")
    cfg = ServerConfig(grpc_port=0, http_port=0, metrics_port=0, startup_timeout=60)
    with TritonServer(repo, cfg) as server:
        assert server.is_ready()
        assert len({server.grpc_port, server.http_port, server.metrics_port}) == 3
        pgid = server.pid
        assert pgid is not None
        assert find_stubs(str(repo)), "the identity model runs in a backend stub"
        x = np.random.default_rng(0).random((50, 3), dtype=np.float32)
        with Transport(ClientConfig(url=server.grpc_url)) as t:
            out = t.infer("identity_ensemble5", {"FEATURES": x}, ["OUTPUT"])
        np.testing.assert_array_equal(out["OUTPUT"], x)
        workdir = server.workdir
        regions = _stub_regions(pgid)
        assert regions and all((Path("/dev/shm") / r).exists() for r in regions)
    assert not group_alive(pgid)
    assert find_stubs(str(repo)) == []
    assert not workdir.exists()
    assert not any((Path("/dev/shm") / r).exists() for r in regions)


def test_bad_repository_fails_fast_with_log(tmp_path: Path) -> None:
    repo = write_floor_repository(tmp_path / "bad")
    (repo / "identity" / "config.pbtxt").write_text('name: "identity"\nbogus_field: 1\n')
    t0 = time.monotonic()
    with pytest.raises(ServerError, match="exited") as info:
        TritonServer(repo, ServerConfig(grpc_port=0, http_port=0, metrics_port=0)).start()
    assert time.monotonic() - t0 < 60
    assert "bogus_field" in str(info.value) or "identity" in str(info.value)


def read_until_ready(proc: subprocess.Popen[str], timeout: float = 90) -> list[str]:
    """Lines of the command's output up to its "ready" line."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("ready"):
            break
    return lines


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_command_prints_endpoints_and_stops_on_signal(
        tmp_path: Path, find_stubs: Callable[[str], list[int]], sig: signal.Signals) -> None:
    """Stops on SIGTERM, and on SIGINT even when started with SIGINT ignored (``&``)."""
    repo = write_floor_repository(tmp_path / "floor")
    ports = free_ports(3)
    cmd = [sys.executable, "-m", "exatrkx.cli", "serve", "--repository", str(repo),
           "--grpc-port", str(ports[0]), "--http-port", str(ports[1]),
           "--metrics-port", str(ports[2])]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=_ignore_sigint) as proc:
        try:
            lines = read_until_ready(proc)
            text = "".join(lines)
            assert f"gRPC:    127.0.0.1:{ports[0]}" in text, text
            assert f"HTTP:    127.0.0.1:{ports[1]}" in text, text
            assert f"http://127.0.0.1:{ports[2]}/metrics" in text, text
            assert find_stubs(str(repo))
            proc.send_signal(sig)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert find_stubs(str(repo)) == []


def test_serve_command_refuses_a_busy_port(tmp_path: Path) -> None:
    import socket

    repo = write_floor_repository(tmp_path / "floor")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "exatrkx.cli", "serve", "--repository",
                              str(repo), "--grpc-port", str(busy)],
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert f"gRPC port {busy} is already in use" in res.stderr
