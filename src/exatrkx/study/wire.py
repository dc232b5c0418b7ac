"""Wire-level robustness checks of a running server: bad bytes, not bad tensors.

Each case sends something a well-behaved client never would (random bytes, truncated HTTP/2
frames, random HPACK or protobuf, oversized or half-sent messages, 1000 connections opened
and dropped, clients that stall mid-request, the two requests that crash Triton 2.51's HTTP
JSON parser) and returns what the server answered. After each, :func:`check` asks: is the
server still ready, does a good request still get the right answer over HTTP and gRPC, how
much memory, how many descriptors and threads does ``tritonserver`` hold.

Safety: every case talks to ``127.0.0.1`` only (:class:`Target` refuses anything else),
and every loop is bounded in count and in time (a case's ``budget_s``).

``benchmarks/fuzz_test.py`` runs every case at full size; ``tests/study/test_wire.py`` runs
them small, and checks that the crash reproducers are now refused (403) without the key.

HTTP/2 is written by hand (frames and a literal-only HPACK encoder; answers decoded for
reading), so that broken frames can be sent at all.
"""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exatrkx.contract import API_KEY_HEADER, GRPC_API_KEY_HEADER, on_wire

LOOPBACK = "127.0.0.1"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
INFER_PATH = "/inference.GRPCInferenceService/ModelInfer"
_FRAMES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS",
           5: "PUSH_PROMISE", 6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}
_H2_ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
              6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR",
              11: "ENHANCE_YOUR_CALM"}
#: the identity model's input, checked on the way back
GOOD = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
#: The same event as sent: with the contract's leading event dimension.
GOOD_WIRE = on_wire(GOOD)


@dataclass
class Target:
    """The server under test (loopback only).

    Attributes:
        grpc_port, http_port, metrics_port: its ports on 127.0.0.1.
        pid: ``tritonserver``'s pid (memory, descriptors, threads; None: not read).
        key: the server's key (the good HTTP request needs it for inference).
        model: an identity model (``FEATURES`` -> ``OUTPUT``) for the good requests.
    """

    grpc_port: int
    http_port: int
    metrics_port: int | None = None
    pid: int | None = None
    key: str | None = None
    model: str = "identity"
    host: str = field(default=LOOPBACK)

    def __post_init__(self) -> None:
        if self.host != LOOPBACK:
            raise ValueError("wire checks target 127.0.0.1 only")


class Budget:
    """A case's time limit: ``left()`` seconds, ``over()`` once spent."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def over(self) -> bool:
        return time.monotonic() >= self.end


# ---------------------------------------------------------------------------- /proc, health

def alive(pid: int | None) -> bool:
    """True while ``pid`` runs (a zombie counts as dead; None: not known, True)."""
    if not pid:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def proc_stats(pid: int | None) -> dict[str, Any]:
    """``tritonserver``'s resident MB, open descriptors and threads."""
    if not pid:
        return {}
    if not alive(pid):
        return {"alive": False}
    try:
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf(
            "SC_PAGE_SIZE")
        return {"alive": True, "rss_mb": round(rss / 2**20, 1),
                "fds": len(os.listdir(f"/proc/{pid}/fd")),
                "threads": len(os.listdir(f"/proc/{pid}/task"))}
    except OSError:
        return {"alive": False}


def http_post(t: Target, path: str, body: bytes, headers: dict[str, str] | None = None,
              timeout: float = 10.0) -> tuple[int, str]:
    """Status and body of one well-formed HTTP POST (urllib)."""
    req = urllib.request.Request(f"http://{LOOPBACK}:{t.http_port}{path}", data=body,
                                 headers={"Content-Type": "application/json",
                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def check(t: Target) -> dict[str, Any]:
    """Ready? A good request answered right over HTTP (with the key) and gRPC? Memory,
    descriptors, threads of ``tritonserver``."""
    import tritonclient.grpc as grpcclient

    out: dict[str, Any] = {}
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{t.http_port}/v2/health/ready",
                                    timeout=5) as resp:
            out["ready"] = resp.status == 200
    except OSError:
        out["ready"] = False
    body = json.dumps({"inputs": [{"name": "FEATURES", "shape": list(GOOD_WIRE.shape),
                                   "datatype": "FP32", "data": GOOD.ravel().tolist()}]})
    try:
        code, text = http_post(t, f"/v2/models/{t.model}/infer", body.encode(),
                               {API_KEY_HEADER: t.key} if t.key else None)
        got = json.loads(text)["outputs"][0]
        out["http_ok"] = code == 200 and np.allclose(
            np.asarray(got["data"], np.float32).reshape(got["shape"]), GOOD_WIRE)
    except (OSError, ValueError, KeyError, IndexError):
        out["http_ok"] = False
    try:
        with grpcclient.InferenceServerClient(f"{LOOPBACK}:{t.grpc_port}") as client:
            tensor = grpcclient.InferInput("FEATURES", list(GOOD_WIRE.shape), "FP32")
            tensor.set_data_from_numpy(GOOD_WIRE)
            res = client.infer(t.model, [tensor], client_timeout=10,
                               headers={GRPC_API_KEY_HEADER: t.key} if t.key else None)
            out["grpc_ok"] = bool(np.array_equal(res.as_numpy("OUTPUT"), GOOD_WIRE))
    except Exception:  # any failure is the answer
        out["grpc_ok"] = False
    out.update(proc_stats(t.pid))
    out["ok"] = bool(out["ready"] and out["http_ok"] and out["grpc_ok"]
                     and out.get("alive", True))
    return out


# ---------------------------------------------------------------------------- sockets, HTTP/2

def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_some(sock: socket.socket, seconds: float, limit: int = 1 << 20,
              settle: float | None = None) -> tuple[bytes, str]:
    """What the peer sends within ``seconds`` (``settle``: once something came, wait only
    that much longer), and how reading ended."""
    data = b""
    end = time.monotonic() + seconds
    how = "still open"
    while len(data) < limit:
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            how = "reset by server"
            break
        except OSError as exc:
            how = f"error {exc}"
            break
        if not chunk:
            how = "closed by server"
            break
        data += chunk
        if settle is not None:
            end = min(end, time.monotonic() + settle)
    return data, how


def frame(ftype: int, flags: int, stream: int, payload: bytes = b"",
          length: int | None = None) -> bytes:
    """An HTTP/2 frame; ``length`` may lie about the payload."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def _hpack_int(value: int, prefix: int) -> bytes:
    top = (1 << prefix) - 1
    if value < top:
        return bytes([value])
    out = [top]
    value -= top
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    return bytes([*out, value])


def hpack(headers: list[tuple[str, str]]) -> bytes:
    """Literal header fields without indexing, no Huffman coding."""
    out = b""
    for name, value in headers:
        n, v = name.encode(), value.encode()
        out += b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v
    return out


def frames_of(data: bytes) -> list[str]:
    """The HTTP/2 frames in ``data``, for reading (type, stream, error code)."""
    out, i = [], 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big")
        ftype, flags = data[i + 3], data[i + 4]
        payload = data[i + 9:i + 9 + n]
        desc = _FRAMES.get(ftype, f"type{ftype}")
        if ftype == 7 and len(payload) >= 8:
            desc += f"({_H2_ERRORS.get(int.from_bytes(payload[4:8], 'big'), '?')})"
        elif ftype == 3 and len(payload) >= 4:
            desc += f"({_H2_ERRORS.get(int.from_bytes(payload[:4], 'big'), '?')})"
        elif ftype == 1 and b"grpc-status" in payload:
            desc += "(grpc-status)"
        elif ftype == 4 and flags & 1:
            desc += "(ACK)"
        out.append(desc)
        i += 9 + n
    return out


def grpc_headers(port: int) -> list[tuple[str, str]]:
    return [(":method", "POST"), (":scheme", "http"), (":path", INFER_PATH),
            (":authority", f"{LOOPBACK}:{port}"), ("content-type", "application/grpc"),
            ("te", "trailers")]


def h2_open(port: int) -> socket.socket:
    """Connected; preface and SETTINGS sent, the server's SETTINGS acknowledged."""
    sock = connect(port)
    sock.sendall(PREFACE + frame(4, 0, 0))
    read_some(sock, 0.2)
    sock.sendall(frame(4, 1, 0))
    return sock


def _tally(answers: dict[str, int], key: str) -> None:
    answers[key] = answers.get(key, 0) + 1


# ---------------------------------------------------------------------------- gRPC cases

Case = Callable[[Target, random.Random, int, Budget], dict[str, Any]]


def random_bytes_grpc(t: Target, rng: random.Random, count: int, budget: Budget
                      ) -> dict[str, Any]:
    """``count`` connections to the gRPC port, each 1 B..64 KiB of random bytes."""
    return _random_bytes(t.grpc_port, 65536, lambda data: str(frames_of(data)[:2]), rng,
                         count, budget)


def _random_bytes(port: int, most: int, describe: Callable[[bytes], str],
                  rng: random.Random, count: int, budget: Budget) -> dict[str, Any]:
    """``count`` connections to ``port``, each 1 B..``most`` B of random bytes; the answers
    tallied by ``describe(first bytes read)`` and how the read ended."""
    answers: dict[str, int] = {}
    for _ in range(count):
        if budget.over():
            break
        with connect(port) as sock:
            try:
                sock.sendall(rng.randbytes(rng.randint(1, most)))
                data, how = read_some(sock, 0.3)
                _tally(answers, f"{describe(data)} / {how}")
            except OSError as exc:
                _tally(answers, f"send failed: {type(exc).__name__}")
    return {"answers": answers}


def truncated_frames(t: Target, rng: random.Random, count: int, budget: Budget
                     ) -> dict[str, Any]:
    """Preface, then a frame that announces more bytes than are sent (a cut SETTINGS frame,
    HEADERS announcing 1000 B with 10 sent, DATA before any HEADERS), then close."""
    answers: dict[str, int] = {}
    for k in range(count):
        if budget.over():
            break
        kind = k % 3
        if kind == 0:
            payload = PREFACE + frame(4, 0, 0, b"\x00" * 12)[:rng.randint(1, 8)]
        elif kind == 1:
            payload = PREFACE + frame(4, 0, 0) + frame(1, 4, 1, rng.randbytes(10), length=1000)
        else:
            payload = PREFACE + frame(4, 0, 0) + frame(0, 0, 1, b"\x00" * 20, length=40)
        with connect(t.grpc_port) as sock:
            sock.sendall(payload)
            data, how = read_some(sock, 0.2)
            _tally(answers, f"kind {kind}: {frames_of(data)[-1:]} / {how}")
    return {"answers": answers}


def preface_then_garbage(t: Target, rng: random.Random, count: int, budget: Budget
                         ) -> dict[str, Any]:
    """A valid HTTP/2 preface, then 9 B..4 KiB of random bytes."""
    answers: dict[str, int] = {}
    for _ in range(count):
        if budget.over():
            break
        with connect(t.grpc_port) as sock:
            sock.sendall(PREFACE + rng.randbytes(rng.randint(9, 4096)))
            data, how = read_some(sock, 0.3)
            goaway = [f for f in frames_of(data) if f.startswith("GOAWAY")]
            _tally(answers, f"{goaway[:1]} / {how}")
    return {"answers": answers}


def random_hpack(t: Target, rng: random.Random, count: int, budget: Budget) -> dict[str, Any]:
    """Valid preface and SETTINGS, then a HEADERS frame of random HPACK bytes."""
    answers: dict[str, int] = {}
    for _ in range(count):
        if budget.over():
            break
        with h2_open(t.grpc_port) as sock:
            sock.sendall(frame(1, 5, 1, rng.randbytes(rng.randint(1, 512))))
            data, how = read_some(sock, 0.3)
            seen = [f for f in frames_of(data) if not f.startswith(("SETTINGS", "WINDOW"))]
            _tally(answers, f"{seen[:1]} / {how}")
    return {"answers": answers}


def random_protobuf(t: Target, rng: random.Random, count: int, budget: Budget
                    ) -> dict[str, Any]:
    """Well-formed gRPC framing to ModelInfer with a random protobuf body (0..2 KiB)."""
    answers: dict[str, int] = {}
    for _ in range(count):
        if budget.over():
            break
        body = rng.randbytes(rng.randint(0, 2048))
        with h2_open(t.grpc_port) as sock:
            sock.sendall(frame(1, 4, 1, hpack(grpc_headers(t.grpc_port)))
                         + frame(0, 1, 1, b"\x00" + struct.pack(">I", len(body)) + body))
            data, _ = read_some(sock, 0.5)
            seen = [f for f in frames_of(data) if f.startswith(("HEADERS", "RST", "GOAWAY"))]
            _tally(answers, f"{seen[-1:]}")
    return {"answers": answers}


def oversized_declared(t: Target, rng: random.Random, count: int, budget: Budget
                       ) -> dict[str, Any]:
    """A gRPC message whose prefix declares 4 GiB - 1 (over Triton's 2 GiB - 1), then
    ``count`` x 16 KiB of it and silence: is it refused before the bytes arrive?"""
    with h2_open(t.grpc_port) as sock:
        sock.sendall(frame(1, 4, 1, hpack(grpc_headers(t.grpc_port))))
        sent = 0
        note = "sent"
        try:
            sock.sendall(frame(0, 0, 1, b"\x00" + struct.pack(">I", 0xFFFFFFFF)
                               + rng.randbytes(16379)))
            sent = 16379
            sock.settimeout(2)
            for _ in range(count):
                if budget.over():
                    break
                sock.sendall(frame(0, 0, 1, rng.randbytes(16384)))
                sent += 16384
        except OSError as exc:
            note = f"send stopped: {type(exc).__name__}"
        data, how = read_some(sock, min(3.0, budget.left() + 0.5))
    seen = [f for f in frames_of(data) if not f.startswith(("SETTINGS", "WINDOW", "PING"))]
    return {"declared_bytes": 0xFFFFFFFF, "sent_bytes": sent, "note": note,
            "server_sent": seen[:6], "connection": how}


def big_valid_grpc(t: Target, rng: random.Random, count: int, budget: Budget
                   ) -> dict[str, Any]:
    """One valid identity request of ``count`` MiB (what a client may legitimately make the
    server hold), memory before and after."""
    import tritonclient.grpc as grpcclient

    before = proc_stats(t.pid).get("rss_mb")
    x = on_wire(np.zeros((count * (1 << 20) // 12, 3), np.float32))
    t0 = time.monotonic()
    try:
        with grpcclient.InferenceServerClient(f"{LOOPBACK}:{t.grpc_port}") as client:
            tensor = grpcclient.InferInput("FEATURES", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x)
            res = client.infer(t.model, [tensor], client_timeout=max(1.0, budget.left()))
            outcome = "answered" if res.as_numpy("OUTPUT").shape == x.shape else "wrong shape"
    except Exception as exc:  # the outcome is the answer
        outcome = f"error: {str(exc)[:200]}"
    return {"mib": count, "outcome": outcome, "seconds": round(time.monotonic() - t0, 2),
            "rss_before_mb": before, "rss_after_mb": proc_stats(t.pid).get("rss_mb")}


# ---------------------------------------------------------------------------- HTTP cases

def _post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n").encode() + extra + b"\r\n" + body


def _binary(model: str, shape: list[int], data: bytes) -> bytes:
    head = json.dumps({"inputs": [{"name": "FEATURES", "shape": shape, "datatype": "FP32",
                                   "parameters": {"binary_data_size": len(data)}}]}).encode()
    return _post(f"/v2/models/{model}/infer", head + data,
                 f"Inference-Header-Content-Length: {len(head)}\r\n".encode())


def _infer(model: str, body: bytes) -> bytes:
    return _post(f"/v2/models/{model}/infer", body)


#: Raw HTTP/1.1 requests: name -> (model -> bytes). The two ``CRASH:`` ones killed Triton
#: 2.51 (SIGSEGV, SIGABRT) when HTTP inference was open; now they must be refused.
HTTP_REQUESTS: dict[str, Callable[[str], bytes]] = {
    "request line only": lambda m: b"GET /v2/health/ready HTTP/1.1\r\n",
    "truncated headers": lambda m: f"POST /v2/models/{m}/infer HTTP/1.1\r\nHost: x\r\nCont"
                                   .encode(),
    "body shorter than Content-Length": lambda m: (
        f"POST /v2/models/{m}/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{\"in"
        .encode()),
    "Content-Length 2^40, 1 KiB sent": lambda m: (
        f"POST /v2/models/{m}/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1099511627776"
        "\r\n\r\n".encode() + b"{" * 1024),
    "negative Content-Length": lambda m: (
        f"POST /v2/models/{m}/infer HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{{}}"
        .encode()),
    "Content-Length and chunked": lambda m: (
        f"POST /v2/models/{m}/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v2/models/{m}/config HTTP/1.1\r\n"
        "Host: x\r\n\r\n".encode()),
    "bad chunk size": lambda m: (
        f"POST /v2/models/{m}/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
        "\r\n\r\nzzzz\r\nabc\r\n0\r\n\r\n".encode()),
    "1 MiB URI": lambda m: b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "1 MiB header value": lambda m: (
        b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20)
        + b"\r\n\r\n"),
    "10000 headers": lambda m: (
        b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(10000)) + b"\r\n"),
    "HTTP/2 preface to the HTTP port": lambda m: PREFACE + frame(4, 0, 0),
    "JSON not JSON": lambda m: _infer(m, b"{not json" + b"\xff" * 64),
    "JSON nested 100000 deep": lambda m: _infer(m, b"[" * 100_000 + b"]" * 100_000),
    "binary header length > body": lambda m: _post(
        f"/v2/models/{m}/infer", b'{"inputs":[]}',
        b"Inference-Header-Content-Length: 99999999\r\n"),
    "binary tensor of shape [1, 2^31, 3], 12 B sent": lambda m: _binary(m, [1, 2**31, 3],
                                                                         b"\x00" * 12),
    "CRASH: JSON nested 1000000 deep": lambda m: _infer(m, b"[" * 1_000_000
                                                        + b"]" * 1_000_000),
    "CRASH: JSON tensor of shape [1, 2^40, 3], 3 values": lambda m: _infer(
        m, b'{"inputs":[{"name":"FEATURES","shape":[1,1099511627776,3],"datatype":"FP32",'
           b'"data":[1,2,3]}]}'),
}
#: The requests that crash Triton 2.51 when they reach its JSON parser.
CRASHERS = tuple(name for name in HTTP_REQUESTS if name.startswith("CRASH:"))


def raw_http(t: Target, request: bytes, key: str | None = None,
             wait_s: float = 2.0) -> dict[str, Any]:
    """Send one raw request (``key``: with the key header), read the answer."""
    if key is not None:
        request = request.replace(b"\r\n", f"\r\n{API_KEY_HEADER}: {key}\r\n".encode(), 1)
    with connect(t.http_port) as sock:
        try:
            sock.sendall(request)
            data, how = read_some(sock, wait_s, settle=0.3)
        except OSError as exc:
            data, how = b"", f"send failed: {type(exc).__name__}"
    text = data.decode(errors="replace")
    return {"status": text.split("\r\n", 1)[0], "body": text.split("\r\n\r\n", 1)[-1][:160]
            if text else "", "connection": how}


def http_requests(t: Target, rng: random.Random, count: int, budget: Budget,
                  names: tuple[str, ...] | None = None, key: str | None = None
                  ) -> dict[str, Any]:
    """Each of :data:`HTTP_REQUESTS` (or ``names``) ``count`` times, a new connection each;
    ``key``: sent with the key (never the crash reproducers unless named)."""
    out: dict[str, Any] = {}
    for name in names or tuple(n for n in HTTP_REQUESTS if key is None or n not in CRASHERS):
        request = HTTP_REQUESTS[name](t.model)
        seen: dict[str, Any] = {}
        for i in range(count):
            if budget.over():
                break
            seen = raw_http(t, request, key)
            if not alive(t.pid):
                seen["server_died_on_try"] = i + 1
                break
        out[name] = {**seen, "request_bytes": len(request)}
    return out


def random_bytes_http(t: Target, rng: random.Random, count: int, budget: Budget
                      ) -> dict[str, Any]:
    """``count`` connections of random bytes (1 B..16 KiB) to the HTTP port."""
    return _random_bytes(t.http_port, 16384,
                         lambda data: repr(data[:12].decode(errors="replace")), rng, count,
                         budget)


def oversized_http_body(t: Target, rng: random.Random, count: int, budget: Budget,
                        key: str | None = None) -> dict[str, Any]:
    """A valid flat JSON request of ``count`` MiB to the infer endpoint (a legitimate, big
    request: JSON inflates ~20x in Triton), peak memory while it is served."""
    rows = max(1, ((count << 20) - 200) // 12)
    head = (f'{{"inputs":[{{"name":"FEATURES","shape":[1,{rows},3],"datatype":"FP32",'
            '"data":[').encode()
    tail = b"1.5]}]}"
    length = len(head) + rows * 12 - 4 + len(tail)
    peak = {"mb": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak["mb"] = max(peak["mb"], proc_stats(t.pid).get("rss_mb", 0.0))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    before = proc_stats(t.pid).get("rss_mb")
    t0 = time.monotonic()
    headers = (f"POST /v2/models/{t.model}/infer HTTP/1.1\r\nHost: x\r\n"
               f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
               + (f"{API_KEY_HEADER}: {key}\r\n" if key else "") + "\r\n").encode()
    note = "all sent"
    with connect(t.http_port, timeout=max(5.0, budget.left())) as sock:
        try:
            sock.sendall(headers + head)
            block = b"1.5," * 3 * 8192
            left = rows * 12 - 4
            while left > 0 and not budget.over():
                part = block[:min(len(block), left)]
                sock.sendall(part)
                left -= len(part)
            sock.sendall(tail)
        except OSError as exc:
            note = f"send stopped: {type(exc).__name__}"
        data, how = read_some(sock, max(1.0, budget.left()), limit=4096, settle=0.5)
    stop.set()
    sampler.join()
    text = data.decode(errors="replace")
    return {"mib": count, "with_key": key is not None, "note": note,
            "status": text.split("\r\n", 1)[0], "connection": how,
            "seconds": round(time.monotonic() - t0, 2), "rss_before_mb": before,
            "rss_peak_mb": peak["mb"], "rss_after_mb": proc_stats(t.pid).get("rss_mb")}


# ---------------------------------------------------------------------------- connections

def connection_churn(t: Target, rng: random.Random, count: int, budget: Budget
                     ) -> dict[str, Any]:
    """``count`` TCP connections to each port, opened 100 at a time and dropped (half closed,
    half reset), then ``count`` idle gRPC connections held at once while :func:`check`."""
    out: dict[str, Any] = {}
    ports = {"grpc": t.grpc_port, "http": t.http_port}
    if t.metrics_port:
        ports["metrics"] = t.metrics_port
    for name, port in ports.items():
        opened = failed = 0
        while opened + failed < count and not budget.over():
            socks = []
            for _ in range(min(100, count - opened - failed)):
                try:
                    socks.append(connect(port, timeout=2))
                    opened += 1
                except OSError:
                    failed += 1
            for i, sock in enumerate(socks):
                if i % 2:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        out[name] = {"opened": opened, "failed": failed}
    time.sleep(0.5)
    out["after_churn"] = proc_stats(t.pid)
    held = []
    try:
        for _ in range(count):
            if budget.over():
                break
            held.append(connect(t.grpc_port, timeout=2))
        out["held_open"] = len(held)
        out["check_while_held"] = check(t)
    except OSError as exc:
        out["held_open"] = len(held)
        out["hold_stopped"] = f"{type(exc).__name__}: {exc}"
    finally:
        for sock in held:
            sock.close()
    return out


def stalled_clients(t: Target, rng: random.Random, count: int, budget: Budget
                    ) -> dict[str, Any]:
    """``count`` clients per protocol that send part of a request and then nothing (HTTP
    body, gRPC message, half an HTTP/2 preface); :func:`check` while they stall, and how many
    the server closed before the budget ran out."""
    socks: dict[str, list[socket.socket]] = {"http": [], "grpc": [], "grpc_half_preface": []}
    body = b'{"inputs":[{"name":"FEATURES","shape":[1,1,3],"datatype":"FP32","data":[1,'
    try:
        for _ in range(count):
            if budget.over():
                break
            sock = connect(t.http_port)
            socks["http"].append(sock)
            sock.sendall(f"POST /v2/models/{t.model}/infer HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 1000\r\n\r\n".encode() + body)
            sock = h2_open(t.grpc_port)
            socks["grpc"].append(sock)
            sock.sendall(frame(1, 4, 1, hpack(grpc_headers(t.grpc_port)))
                         + frame(0, 0, 1, b"\x00" + struct.pack(">I", 1000) + b"\x0a\x08identity"))
            sock = connect(t.grpc_port)
            socks["grpc_half_preface"].append(sock)
            sock.sendall(PREFACE[:10])
        during = check(t)
        closed = dict.fromkeys(socks, 0)
        while not budget.over():
            for kind, lst in socks.items():
                for sock in list(lst):
                    sock.settimeout(0)
                    try:
                        if sock.recv(65536):
                            continue
                    except BlockingIOError:
                        continue
                    except OSError:
                        pass
                    closed[kind] += 1
                    lst.remove(sock)
                    sock.close()
            time.sleep(min(0.5, budget.left()))
    finally:
        left = {kind: len(lst) for kind, lst in socks.items()}
        for lst in socks.values():
            for sock in lst:
                sock.close()
    return {"per_protocol": count, "check_while_stalled": during,
            "closed_by_server": closed, "still_open_at_end": left}


#: name -> (case, default count, default budget s) of :func:`run_cases`.
CASES: dict[str, tuple[Case, int, float]] = {
    "random bytes to gRPC": (random_bytes_grpc, 200, 60),
    "truncated HTTP/2 frames": (truncated_frames, 100, 60),
    "HTTP/2 preface then garbage": (preface_then_garbage, 100, 60),
    "random HPACK": (random_hpack, 100, 60),
    "random protobuf to ModelInfer": (random_protobuf, 100, 90),
    "gRPC message declaring 4 GiB": (oversized_declared, 64, 20),
    "valid 128 MiB gRPC request": (big_valid_grpc, 128, 120),
    "random bytes to HTTP": (random_bytes_http, 200, 60),
    "malformed HTTP requests": (http_requests, 3, 180),
    "1000 connections opened and dropped": (connection_churn, 1000, 90),
    "stalled clients": (stalled_clients, 100, 30),
}


def run_cases(t: Target, names: list[str] | None = None, seed: int = 0,
              scale: float = 1.0, log: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Run the cases (default: all of :data:`CASES`), :func:`check` after each.

    ``scale`` multiplies every count and budget (tests run them small). A case that kills
    the server ends the run (``server_died``).
    """
    rng = random.Random(seed)
    results: dict[str, Any] = {"before": check(t)}
    for name in names or list(CASES):
        func, count, seconds = CASES[name]
        t0 = time.monotonic()
        try:
            seen = func(t, rng, max(1, round(count * scale)), Budget(seconds * scale))
        except OSError as exc:
            seen = {"case_failed": f"{type(exc).__name__}: {exc}"}
        after = check(t)
        results[name] = {"seen": seen, "after": after,
                         "seconds": round(time.monotonic() - t0, 1)}
        if log is not None:
            log(f"{name} ({results[name]['seconds']} s): after {after}")
        if not after.get("alive", True):
            results[name]["server_died"] = True
            break
    return results
