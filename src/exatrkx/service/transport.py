"""One connection to a Triton server: requests with timeouts and retries, shared memory.

Transports: gRPC (default) or HTTP, optionally with Triton system shared memory for the
tensors (client and server on one host). Shared-memory regions are sized from the
contract's per-hit bounds (:meth:`exatrkx.contract.TensorSpec.bytes_per_hit`) for the event
at hand, rounded up to a power of two of hits (at least :data:`SHM_MIN_HITS`), and replaced
by larger ones when a larger event comes, up to ``ClientConfig.shm_max_hits`` hits (default:
the servers' default limit); a larger event is sent inline. gRPC messages may be as large as
Triton's server takes (:data:`exatrkx.contract.MAX_MESSAGE_BYTES`, set explicitly on the
channel).

Reliability: every call to the server (readiness, model configuration, statistics,
shared-memory registration, inference) has a client-side timeout (``ClientConfig.timeout_s``);
inference is retried ``ClientConfig.retries`` times with exponential backoff when it failed
for a reason that may pass (server unreachable or restarting, timeout, a backend process that
died). A refusal of the input itself (``INVALID_ARG``: :class:`~exatrkx.errors.RejectedInput`),
of the key, or of the connection's TLS set-up (:func:`exatrkx.service.tls.connection_failure`)
is never retried. A request that still fails raises :class:`~exatrkx.errors.ServerUnavailable`
or :class:`~exatrkx.errors.ServerFailure`.

Security: with ``ClientConfig.tls`` the gRPC channel is TLS (mutual TLS with a client
certificate); the key of the restricted APIs (:data:`exatrkx.contract.API_KEY_ENV`) goes with
every request.

``tritonclient`` is imported when a transport is made, not with this module: it is a heavy
import (gRPC) that in-process use (option 0) never needs.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exatrkx.contract import (
    API_KEY_ENV,
    API_KEY_HEADER,
    DEFAULT_MAX_HITS,
    DEFAULT_PORTS,
    GRPC_API_KEY_HEADER,
    MAX_MESSAGE_BYTES,
    PROTOCOLS,
    TENSORS,
    TOKEN_ENV,
    Protocol,
    off_wire,
    on_wire,
)
from exatrkx.errors import (
    InputError,
    RejectedInput,
    RemoteError,
    ServerFailure,
    ServerUnavailable,
)
from exatrkx.service.stats import RawStats, parse_statistics
from exatrkx.service.tls import DEFAULT_CHANNEL_ARGS, ClientTls, connection_failure, quiet_grpc

#: Shared-memory regions fit at least this many hits (small events share one size).
SHM_MIN_HITS = 4096
#: gRPC channel options: tritonclient's own (options given replace them all), with messages
#: up to Triton's limit both ways.
GRPC_CHANNEL_ARGS = [*((k, v) for k, v in DEFAULT_CHANNEL_ARGS
                       if k not in ("grpc.max_send_message_length",
                                    "grpc.max_receive_message_length")),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]

#: gRPC status codes of failures that may pass when the request is sent again.
TRANSIENT_GRPC = frozenset(f"StatusCode.{code}" for code in (
    "UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "RESOURCE_EXHAUSTED",
    "ABORTED", "CANCELLED"))
#: Statuses of a refusal of the request's content (gRPC, HTTP).
INVALID_STATUSES = frozenset({"StatusCode.INVALID_ARGUMENT", "400", "[400]"})


#: gRPC's prefix of a failed connection ("failed to connect to all addresses; last error:
#: UNAVAILABLE: ipv4:127.0.0.1:8001: Connection refused").
_CONNECT_PREFIX = re.compile(r"failed to connect to all addresses; last error: \w+: \S+: ")


def is_transient(status: str | None, message: str) -> bool:
    """Whether a Triton error (tritonclient's status string and message) may pass."""
    if "restricted" in message:  # a missing or wrong key: sending it again will not help
        return False
    status = status or ""
    if status.startswith("StatusCode."):
        return status in TRANSIENT_GRPC
    code = status.strip("[]")
    return not code or code.startswith("5") or code == "429"


def remote_error(what: str, status: str | None, message: str,
                 tls: ClientTls | None = None) -> RemoteError | RejectedInput:
    """The package's error for a Triton error (status and message from tritonclient);
    ``tls``: the client's TLS settings (they tell the causes of a failed set-up)."""
    status = status or ""
    if status in ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"):
        cause = connection_failure(message, tls)
        if cause is not None:  # never passes by itself: not sent again
            return ServerUnavailable(f"{what}: {cause}", transient=False, unreachable=False)
    if status in INVALID_STATUSES:
        return RejectedInput(f"{what}: {message}")
    if "restricted" in message:
        return ServerUnavailable(f"{what}: refused: {message}", transient=False,
                                 unreachable=False)
    if status == "StatusCode.UNAVAILABLE":
        return ServerUnavailable(f"{what}: {_CONNECT_PREFIX.sub('cannot connect: ', message)}")
    return ServerFailure(f"{what}: {message}", transient=is_transient(status, message))


@dataclass(frozen=True)
class ClientConfig:
    """How to reach the server.

    Attributes:
        url: ``host:port`` (default ``127.0.0.1`` and the protocol's default port).
        protocol: ``"grpc"`` or ``"http"``.
        shared_memory: pass tensors through Triton system shared memory (same host only).
        shm_max_hits: events up to this many hits go through shared memory (regions grow
            with the events, up to this size); larger ones are sent inline.
        max_neighbours: edges per hit bound (sizes the edge regions; from the weights).
        embed_dim: embedding width (sizes the EMBEDDING regions).
        timeout_s: client-side timeout of one request in seconds (None: none).
        retries: sends again of a request that failed transiently (0: none).
        backoff_s: wait before the first resend; it doubles each time (with jitter),
            at most :attr:`max_backoff_s`.
        max_backoff_s: cap of the wait between resends.
        api_key: key of the server's restricted APIs (None: ``$EXATRKX_API_KEY``;
            ``""``: send none).
        tls: TLS of the gRPC connection (None: plain text).
        token: bearer token sent as ``authorization: Bearer ...`` (None:
            ``$EXATRKX_TOKEN``; ``""``: none), for a proxy that checks tokens.
    """

    url: str | None = None
    protocol: Protocol = "grpc"
    shared_memory: bool = False
    shm_max_hits: int = DEFAULT_MAX_HITS
    max_neighbours: int = 64
    embed_dim: int = 8
    timeout_s: float | None = 60.0
    retries: int = 2
    backoff_s: float = 0.25
    max_backoff_s: float = 5.0
    api_key: str | None = None
    tls: ClientTls | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InputError(f"protocol must be grpc or http, got {self.protocol!r}")
        if self.tls is not None and self.protocol != "grpc":
            raise InputError("TLS is for gRPC: Triton's HTTP endpoint has no TLS (reach it "
                             "through a TLS-terminating proxy, see deploy/)")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise InputError(f"timeout must be positive, got {self.timeout_s}")
        if self.retries < 0:
            raise InputError(f"retries must be >= 0, got {self.retries}")
        if not 0 <= self.backoff_s <= self.max_backoff_s:
            raise InputError("backoff must be >= 0 and at most max_backoff_s")

    @property
    def key(self) -> str | None:
        """The key to send: ``api_key``, else ``$EXATRKX_API_KEY``, else none."""
        key = self.api_key if self.api_key is not None else os.environ.get(API_KEY_ENV)
        return key or None

    @property
    def bearer(self) -> str | None:
        """The token to send: ``token``, else ``$EXATRKX_TOKEN``, else none."""
        token = self.token if self.token is not None else os.environ.get(TOKEN_ENV)
        return token.strip() or None if token else None

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before resend number ``attempt`` (0-based), with jitter."""
        base = min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
        return base * rng.uniform(0.5, 1.0)

    @property
    def address(self) -> str:
        """``host:port`` without any scheme."""
        if not self.url:
            return f"127.0.0.1:{DEFAULT_PORTS[self.protocol]}"
        url = self.url.split("://", 1)[-1].rstrip("/")
        return url if ":" in url else f"{url}:{DEFAULT_PORTS[self.protocol]}"

    def bytes_per_hit(self, tensor: str) -> int:
        """Upper bound of a tensor's bytes per hit of the event."""
        return TENSORS[tensor].bytes_per_hit(self.max_neighbours, self.embed_dim)


@dataclass(frozen=True)
class RequestTiming:
    """One request as the client saw it."""

    model: str
    ms: float


_REGION_IDS = itertools.count()


class _Region:
    """One registered system shared-memory region."""

    def __init__(self, client: Any, name: str, size: int,
                 headers: dict[str, str] | None = None,
                 timeout: dict[str, float] | None = None) -> None:
        import tritonclient.utils.shared_memory as shm

        self.name = name
        self.size = size
        self.headers = headers
        self.timeout = timeout or {}
        self.handle = shm.create_shared_memory_region(name, "/" + name, size)
        try:
            client.register_system_shared_memory(name, "/" + name, size, headers=headers,
                                                 **self.timeout)
        except BaseException:
            shm.destroy_shared_memory_region(self.handle)
            raise

    def write(self, array: np.ndarray) -> None:
        buf = self.handle._mpsm_handle.buf  # the mapped region (tritonclient's handle)
        view: np.ndarray = np.ndarray(array.shape, array.dtype, buffer=buf)
        view[...] = array
        del view

    def read(self, dtype: type[np.generic], shape: Sequence[int]) -> np.ndarray:
        buf = self.handle._mpsm_handle.buf
        view: np.ndarray = np.ndarray(tuple(shape), dtype, buffer=buf)
        out = view.copy()
        del view
        return out

    #: How long :meth:`close` retries an unregister the server refuses as "in use".
    IN_USE_RETRY_S = 2.0

    def close(self, client: Any) -> int:
        """Unregister and destroy; returns how often the server answered "in use".

        Right after a response, Triton 2.51 may still hold the region for a few ms (up to
        150 ms measured with the real pipeline) and refuse to unregister it ("it is
        currently in use"): that is retried, else the server would keep a registration of
        a region destroyed here. Other failures (the server is gone) are ignored.
        """
        import tritonclient.utils.shared_memory as shm

        refused = 0
        deadline = time.monotonic() + self.IN_USE_RETRY_S
        while True:
            try:
                client.unregister_system_shared_memory(self.name, headers=self.headers,
                                                       **self.timeout)
                break
            except Exception as exc:  # the server may be gone already
                if "currently in use" not in str(exc) or time.monotonic() > deadline:
                    break
                refused += 1
                time.sleep(min(0.05, 0.001 * 2 ** min(refused, 6)))
        shm.destroy_shared_memory_region(self.handle)
        return refused


class Transport:
    """One connection to the server (gRPC channel or HTTP connection) and its shm regions.

    Not thread-safe: use one per thread (:class:`exatrkx.service.runner.Runner` does).
    """

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        if config.protocol == "grpc":
            quiet_grpc()
            import tritonclient.grpc as tc
        else:
            import tritonclient.http as tc
        from tritonclient.utils import InferenceServerException

        self._tc: Any = tc
        self._error = InferenceServerException
        if config.protocol == "http" and config.timeout_s:
            self.client: Any = tc.InferenceServerClient(config.address,
                                                        connection_timeout=config.timeout_s,
                                                        network_timeout=config.timeout_s)
        elif config.tls is not None:
            self.client = tc.InferenceServerClient(config.address,
                                                   **config.tls.grpc_client_kwargs())
        elif config.protocol == "grpc":
            self.client = tc.InferenceServerClient(config.address,
                                                   channel_args=GRPC_CHANNEL_ARGS)
        else:
            self.client = tc.InferenceServerClient(config.address)
        #: ``client_timeout`` of every gRPC call (the HTTP client has its own timeouts)
        self._timeout: dict[str, float] = (
            {"client_timeout": config.timeout_s}
            if config.protocol == "grpc" and config.timeout_s else {})
        #: Unregisters of shared memory the server refused as "in use" (then retried).
        self.shm_in_use = 0
        key = config.key
        header = GRPC_API_KEY_HEADER if config.protocol == "grpc" else API_KEY_HEADER
        #: Headers sent with every request (the key of the restricted APIs, a bearer token).
        headers = {header: key} if key else {}
        if config.bearer:
            headers["authorization"] = f"Bearer {config.bearer}"
        self.headers: dict[str, str] | None = headers or None
        self.requests: list[RequestTiming] = []
        #: Requests sent again after a transient failure (over this transport's life).
        self.resent = 0
        self._rng = random.Random()
        self._regions: dict[str, _Region] = {}
        self._prefix = f"exatrkx-{os.getpid()}-{next(_REGION_IDS)}"
        self._generation = 0

    # ------------------------------------------------------------------ server queries

    def _call(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs, headers=..., client_timeout=...)``; Triton and socket
        errors -> the package's."""
        try:
            return func(*args, headers=self.headers, **self._timeout, **kwargs)
        except self._error as exc:
            raise remote_error(what, exc.status(), exc.message() or str(exc),
                               self.config.tls) from None
        except (ConnectionError, OSError) as exc:
            raise ServerUnavailable(f"{what}: cannot reach {self.config.address} "
                                    f"({type(exc).__name__}: {exc})") from None

    def _call_retrying(self, what: str, func: Callable[..., Any], *args: Any,
                       **kwargs: Any) -> Any:
        """:meth:`_call`, sent again after transient failures (``config.retries`` times)."""
        for attempt in itertools.count():
            try:
                return self._call(what, func, *args, **kwargs)
            except RemoteError as exc:
                if not exc.transient or attempt >= self.config.retries:
                    raise
            self.resent += 1
            time.sleep(self.config.backoff(attempt, self._rng))
        raise AssertionError("unreachable")  # pragma: no cover

    def check_ready(self) -> None:
        """Raise unless the server answers ready.

        Raises:
            ServerUnavailable: nothing answers, it is not ready, or it refuses the connection
                (TLS set-up: a one-line cause, not transient).
        """
        what = f"no ready Triton server at {self.config.address} ({self.config.protocol}" + (
            ", TLS)" if self.config.tls else ")")
        try:
            ready = self._call(what, self.client.is_server_ready)
        except ServerUnavailable:
            raise
        except RemoteError as exc:  # a timeout: nothing answered
            raise ServerUnavailable(str(exc)) from None
        if not ready:
            raise ServerUnavailable(f"{what}: it answers that it is not ready")

    def model_parameters(self, model: str) -> dict[str, str]:
        """The string parameters of a model's config."""
        cfg = self._call(f"model {model}", self.client.get_model_config, model,
                         **({"as_json": True} if self.config.protocol == "grpc" else {}))
        cfg = cfg.get("config", cfg)
        return {k: v.get("string_value", "") for k, v in cfg.get("parameters", {}).items()}

    def statistics(self) -> RawStats:
        """Cumulative per-model statistics now (see :func:`exatrkx.service.stats.stats_delta`)."""
        kwargs = {"as_json": True} if self.config.protocol == "grpc" else {}
        return parse_statistics(self._call("statistics", self.client.get_inference_statistics,
                                           **kwargs))

    # ------------------------------------------------------------------ inference

    def _region(self, tensor: str, role: str, num_hits: int) -> _Region | None:
        cfg = self.config
        if not cfg.shared_memory or num_hits > cfg.shm_max_hits:
            return None
        key = f"{tensor}-{role}"
        region = self._regions.get(key)
        need = cfg.bytes_per_hit(tensor) * num_hits
        if region is None or region.size < need:
            if region is not None:  # too small for this event: a larger one replaces it
                region.close(self.client)
                del self._regions[key]
            hits = min(cfg.shm_max_hits,
                       max(SHM_MIN_HITS, 1 << max(num_hits - 1, 0).bit_length()))
            size = max(64, cfg.bytes_per_hit(tensor) * hits)
            self._generation += 1
            try:
                region = _Region(self.client, f"{self._prefix}-{key}-{self._generation}", size,
                                 self.headers, self._timeout)
            except self._error as exc:
                raise remote_error("shared memory", exc.status(),
                                   exc.message() or str(exc), self.config.tls) from None
            except OSError as exc:
                raise ServerFailure(f"shared memory: {exc}") from None
            self._regions[key] = region
        return region

    def infer(self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str],
              num_hits: int | None = None) -> dict[str, np.ndarray]:
        """One request (one event); returns the outputs as numpy arrays (owned by the caller).

        Tensors travel with the contract's leading event dimension (added here, dropped from
        the answers): callers give and get one event's arrays.

        Args:
            model: model name.
            inputs: tensor name -> array (dtype as the contract says).
            outputs: names of the outputs wanted.
            num_hits: hits of the event (decides whether shared memory fits).
        """
        tc = self._tc
        n = num_hits if num_hits is not None else int(next(iter(inputs.values())).shape[0])
        infer_inputs = []
        for name, event in inputs.items():
            spec = TENSORS[name]
            array = on_wire(np.ascontiguousarray(event, dtype=spec.numpy_dtype))
            inp = tc.InferInput(name, list(array.shape), spec.dtype)
            region = self._region(name, "in", n)
            if region is not None and array.nbytes <= region.size:
                region.write(array)
                inp.set_shared_memory(region.name, array.nbytes)
            elif self.config.protocol == "http":
                inp.set_data_from_numpy(array, binary_data=True)
            else:
                inp.set_data_from_numpy(array)
            infer_inputs.append(inp)
        requested, out_regions = [], {}
        for name in outputs:
            out = (tc.InferRequestedOutput(name, binary_data=True)
                   if self.config.protocol == "http" else tc.InferRequestedOutput(name))
            region = self._region(name, "out", n)
            if region is not None:
                out.set_shared_memory(region.name, region.size)
                out_regions[name] = region
            requested.append(out)
        t0 = time.perf_counter()
        result = self._call_retrying(model, self.client.infer, model, infer_inputs,
                                     outputs=requested)
        got: dict[str, np.ndarray] = {}
        for name in outputs:
            region = out_regions.get(name)
            if region is None:
                array = result.as_numpy(name)
                if array is None:
                    raise ServerFailure(f"{model}: the response has no output {name}")
                # responses are read-only buffers; the stages may write to their tensors
                array = array if array.flags.writeable else array.copy()
            else:
                meta = result.get_output(name)
                shape = meta["shape"] if isinstance(meta, dict) else list(meta.shape)
                array = region.read(TENSORS[name].numpy_dtype, [int(s) for s in shape])
            try:
                got[name] = off_wire(name, array)
            except ValueError as exc:
                raise ServerFailure(f"{model}: {exc}") from None
        self.requests.append(RequestTiming(model, (time.perf_counter() - t0) * 1e3))
        return got

    def close(self) -> None:
        """Unregister and free the shared memory, close the connection."""
        for region in self._regions.values():
            self.shm_in_use += region.close(self.client)
        self._regions.clear()
        self.client.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_ready(url: str | None, protocol: Protocol = "grpc", timeout_s: float = 1.0,
                tls: ClientTls | None = None) -> bool:
    """True when the server at ``url`` answers ready within ``timeout_s`` (never raises)."""
    try:
        config = ClientConfig(url=url, protocol=protocol, timeout_s=timeout_s, retries=0,
                              tls=tls)
        if protocol == "grpc":
            quiet_grpc()
            import tritonclient.grpc as tg

            kwargs = tls.grpc_client_kwargs() if tls is not None else {}
            with tg.InferenceServerClient(config.address, **kwargs) as client:
                return bool(client.is_server_ready(client_timeout=timeout_s))
        import tritonclient.http as th

        client = th.InferenceServerClient(config.address, connection_timeout=timeout_s,
                                          network_timeout=timeout_s)
        try:
            return bool(client.is_server_ready())
        finally:
            client.close()
    except Exception:
        return False
