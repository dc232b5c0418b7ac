"""The user-space network emulator: bytes pass unchanged, the round trip grows by at least
twice the one-way delay, and a bandwidth cap slows a bulk transfer to about its rate."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from exatrkx.errors import InputError
from exatrkx.study.netem import NetemProxy, predicted_ms


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A TCP echo server on 127.0.0.1."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(timeout=2)


def _connect(url: str) -> socket.socket:
    host, port = url.split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _rtt_ms(sock: socket.socket, n: int = 20) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        sock.sendall(b"x" * 64)
        got = b""
        while len(got) < 64:
            got += sock.recv(64 - len(got))
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _echo(sock: socket.socket, payload: bytes) -> bytes:
    def send() -> None:
        sock.sendall(payload)

    sender = threading.Thread(target=send)
    sender.start()
    got = bytearray()
    while len(got) < len(payload):
        got += sock.recv(1 << 20)
    sender.join()
    return bytes(got)


def test_bytes_pass_unchanged(echo_server: str) -> None:
    payload = np.random.default_rng(1).bytes(3_000_000)
    with NetemProxy(echo_server, delay_ms=0.1) as proxy, _connect(proxy.url) as sock:
        assert _echo(sock, payload) == payload
        assert proxy.up.bytes == proxy.down.bytes == len(payload)
        assert proxy.connections == 1


@pytest.mark.parametrize("delay_ms", [0.5, 2.5])
def test_round_trip_grows_by_at_least_twice_the_delay(echo_server: str, delay_ms: float) -> None:
    with _connect(echo_server) as direct:
        base = _rtt_ms(direct)
    with NetemProxy(echo_server, delay_ms=delay_ms) as proxy, _connect(proxy.url) as sock:
        rtt = _rtt_ms(sock)
    added = rtt - base
    assert added >= 2 * delay_ms, (rtt, base)
    assert added < 2 * delay_ms + 5.0, (rtt, base)  # loose: 2 shared cores


def test_bandwidth_cap_sets_the_transfer_time(echo_server: str) -> None:
    payload = b"\x01" * 500_000  # 4 Mbit each way at 40 Mbit/s: >= 0.1 s one way
    with NetemProxy(echo_server, bandwidth_bps=40e6) as proxy, _connect(proxy.url) as sock:
        t0 = time.perf_counter()
        assert _echo(sock, payload) == payload
        elapsed = time.perf_counter() - t0
    assert elapsed >= 0.1
    assert elapsed < 1.0


def test_settings_are_checked_and_the_model_adds_up() -> None:
    with pytest.raises(InputError, match="loopback"):
        NetemProxy("10.0.0.1:8001")
    with pytest.raises(InputError):
        NetemProxy("127.0.0.1:8001", delay_ms=-1)
    with pytest.raises(InputError):
        NetemProxy("127.0.0.1:8001", bandwidth_bps=0)
    # 5 round trips of 2 x 0.5 ms, 1.25 MB at 10 Gbit/s = 1 ms
    assert predicted_ms(10.0, 5, 0.5, 1.25e6, 10e9) == pytest.approx(16.0)
    assert predicted_ms(10.0, 1, 0.0, 1e6, None) == 10.0
