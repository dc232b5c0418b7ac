"""A user-space network emulator: a TCP proxy on the loopback that delays and rate-limits.

The kernel of these machines has no ``netem`` queueing discipline, so the network between a
client and a server on one host is emulated here: :class:`NetemProxy` listens on
``127.0.0.1``, forwards every connection to the target server, and delivers each chunk of
bytes ``delay_ms`` after it arrived (each direction, so the round trip grows by twice the
delay). With ``bandwidth_bps`` each direction is a link of that rate shared by all
connections: a chunk waits for the link to be free and occupies it ``8 * bytes / rate``
seconds (store and forward), then travels ``delay_ms``.

A measurement instrument, not a router: per connection and direction one thread reads and
one delivers, with ``time.sleep`` for the waits (about 0.05-0.1 ms late on Linux; the added
round trip is never less than the set one, which the tests check). TCP_NODELAY is set on
both sides, so small messages are not held back by Nagle's algorithm.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from dataclasses import dataclass, field

from exatrkx.errors import InputError

#: Hosts the proxy may listen on and forward to.
LOOPBACK = ("127.0.0.1", "localhost")
_CHUNK = 256 * 1024


@dataclass
class Link:
    """One direction of the emulated network (shared by every connection)."""

    delay_s: float
    bandwidth_bps: float | None
    bytes: int = 0
    chunks: int = 0
    _free_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def deliver_at(self, size: int, now: float) -> float:
        """When a chunk of ``size`` bytes that arrived at ``now`` is delivered."""
        with self._lock:
            self.bytes += size
            self.chunks += 1
            if not self.bandwidth_bps:
                return now + self.delay_s
            start = max(now, self._free_at)
            self._free_at = start + 8.0 * size / self.bandwidth_bps
            return self._free_at + self.delay_s


def _sleep_until(deadline: float) -> None:
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        time.sleep(left)


def _nodelay(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Pipe:
    """One direction of one connection: a reader and a delivering writer."""

    def __init__(self, src: socket.socket, dst: socket.socket, link: Link,
                 done: threading.Event) -> None:
        self.src, self.dst, self.link, self.done = src, dst, link, done
        self.queue: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=self._write, daemon=True)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _read(self) -> None:
        try:
            while True:
                data = self.src.recv(_CHUNK)
                if not data:
                    break
                self.queue.put((self.link.deliver_at(len(data), time.perf_counter()), data))
        except OSError:
            pass
        self.queue.put((time.perf_counter() + self.link.delay_s, b""))

    def _write(self) -> None:
        try:
            while True:
                when, data = self.queue.get()
                _sleep_until(when)
                if not data:
                    with contextlib.suppress(OSError):
                        self.dst.shutdown(socket.SHUT_WR)
                    break
                self.dst.sendall(data)
        except OSError:
            with contextlib.suppress(OSError):
                self.src.shutdown(socket.SHUT_RDWR)
        self.done.set()


class NetemProxy:
    """Delaying, rate-limiting TCP proxy in front of one server (a context manager).

    Args:
        target: the server's ``host:port`` (loopback only).
        delay_ms: one-way delay added in each direction.
        bandwidth_bps: rate of each direction in bit/s (None: no cap).
        port: listening port on 127.0.0.1 (0: a free one).

    Example::

        with NetemProxy(server.grpc_url, delay_ms=0.5, bandwidth_bps=1e9) as proxy:
            runner = make_runner(4, proxy.url)
    """

    def __init__(self, target: str, delay_ms: float = 0.0, bandwidth_bps: float | None = None,
                 port: int = 0) -> None:
        host, _, tport = target.rpartition(":")
        if host not in LOOPBACK or not tport.isdigit():
            raise InputError(f"the proxy forwards to a loopback host:port only, got {target!r}")
        if delay_ms < 0:
            raise InputError(f"delay must be >= 0 ms, got {delay_ms}")
        if bandwidth_bps is not None and bandwidth_bps <= 0:
            raise InputError(f"bandwidth must be > 0 bit/s, got {bandwidth_bps}")
        self.target = ("127.0.0.1", int(tport))
        self.delay_ms = float(delay_ms)
        self.bandwidth_bps = bandwidth_bps
        self.up = Link(delay_ms / 1e3, bandwidth_bps)
        self.down = Link(delay_ms / 1e3, bandwidth_bps)
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._acceptor: threading.Thread | None = None
        self.connections = 0

    @property
    def url(self) -> str:
        """``127.0.0.1:port`` to give the client instead of the server's address."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> NetemProxy:
        """Accept connections in a background thread."""
        if self._acceptor is None:
            self._acceptor = threading.Thread(target=self._accept, name="netem-accept",
                                              daemon=True)
            self._acceptor.start()
        return self

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5.0)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                _nodelay(sock)
            with self._lock:
                if self._closed.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
                self.connections += 1
            done = threading.Event()
            _Pipe(client, upstream, self.up, done).start()
            _Pipe(upstream, client, self.down, threading.Event()).start()

    def reset_counters(self) -> None:
        """Zero the byte and chunk counts of both directions."""
        for link in (self.up, self.down):
            with link._lock:
                link.bytes = link.chunks = 0

    def close(self) -> None:
        """Stop accepting and cut every connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()
        if self._acceptor is not None:
            self._acceptor.join(timeout=2.0)

    def __enter__(self) -> NetemProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def predicted_ms(compute_ms: float, round_trips: float, delay_ms: float, bytes_per_event: float,
                 bandwidth_bps: float | None) -> float:
    """The simple model: compute + round trips x RTT + bytes / bandwidth (ms per event)."""
    wire = 0.0 if not bandwidth_bps else 8.0 * bytes_per_event / bandwidth_bps * 1e3
    return compute_ms + round_trips * 2.0 * delay_ms + wire


__all__ = ["Link", "NetemProxy", "predicted_ms"]
