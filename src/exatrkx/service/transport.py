"""One connection to a Triton server: requests with timeouts and retries, shared memory.

Transports: gRPC (default) or HTTP, optionally with Triton system shared memory for the
tensors (client and server on one host). Shared-memory regions are sized for
``ClientConfig.shm_max_hits`` hits from the contract's per-hit bounds
(:meth:`exatrkx.contract.TensorSpec.bytes_per_hit`); a larger event is sent inline.

Reliability: every request has a client-side timeout (``ClientConfig.timeout_s``) and is
retried ``ClientConfig.retries`` times with exponential backoff when it failed for a reason
that may pass (server unreachable or restarting, timeout, a backend process that died). A
refusal of the input itself (``INVALID_ARG``: :class:`~exatrkx.errors.RejectedInput`) or of
the key is never retried. A request that still fails raises
:class:`~exatrkx.errors.ServerUnavailable` or :class:`~exatrkx.errors.ServerFailure`.

``tritonclient`` is imported when a transport is made, not with this module: it is a heavy
import (gRPC) that in-process use (option 0) never needs.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exatrkx.contract import (
    API_KEY_ENV,
    API_KEY_HEADER,
    DEFAULT_PORTS,
    GRPC_API_KEY_HEADER,
    PROTOCOLS,
    TENSORS,
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

#: gRPC status codes of failures that may pass when the request is sent again.
TRANSIENT_GRPC = frozenset(f"StatusCode.{code}" for code in (
    "UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "RESOURCE_EXHAUSTED",
    "ABORTED", "CANCELLED"))
#: Statuses of a refusal of the request's content (gRPC, HTTP).
INVALID_STATUSES = frozenset({"StatusCode.INVALID_ARGUMENT", "400", "[400]"})


def is_transient(status: str | None, message: str) -> bool:
    """Whether a Triton error (tritonclient's status string and message) may pass."""
    if "restricted" in message:  # a missing or wrong key: sending it again will not help
        return False
    status = status or ""
    if status.startswith("StatusCode."):
        return status in TRANSIENT_GRPC
    code = status.strip("[]")
    return not code or code.startswith("5") or code == "429"


def remote_error(what: str, status: str | None, message: str) -> RemoteError | RejectedInput:
    """The package's error for a Triton error (status and message from tritonclient)."""
    status = status or ""
    if status in INVALID_STATUSES:
        return RejectedInput(f"{what}: {message}")
    if "restricted" in message:
        return ServerUnavailable(f"{what}: refused: {message}", transient=False,
                                 unreachable=False)
    if status == "StatusCode.UNAVAILABLE":
        return ServerUnavailable(f"{what}: {message}")
    return ServerFailure(f"{what}: {message}", transient=is_transient(status, message))


@dataclass(frozen=True)
class ClientConfig:
    """How to reach the server.

    Attributes:
        url: ``host:port`` (default ``127.0.0.1`` and the protocol's default port).
        protocol: ``"grpc"`` or ``"http"``.
        shared_memory: pass tensors through Triton system shared memory (same host only).
        shm_max_hits: events up to this many hits fit the shared-memory regions.
        max_neighbours: edges per hit bound (sizes the edge regions; from the weights).
        embed_dim: embedding width (sizes the EMBEDDING regions).
        timeout_s: client-side timeout of one request in seconds (None: none).
        retries: sends again of a request that failed transiently (0: none).
        backoff_s: wait before the first resend; it doubles each time (with jitter),
            at most :attr:`max_backoff_s`.
        max_backoff_s: cap of the wait between resends.
        api_key: key of the server's restricted APIs (None: ``$EXATRKX_API_KEY``;
            ``""``: send none).
    """

    url: str | None = None
    protocol: Protocol = "grpc"
    shared_memory: bool = False
    shm_max_hits: int = 20_000
    max_neighbours: int = 64
    embed_dim: int = 8
    timeout_s: float | None = 60.0
    retries: int = 2
    backoff_s: float = 0.25
    max_backoff_s: float = 5.0
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InputError(f"protocol must be grpc or http, got {self.protocol!r}")
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
                 headers: dict[str, str] | None = None) -> None:
        import tritonclient.utils.shared_memory as shm

        self.name = name
        self.size = size
        self.headers = headers
        self.handle = shm.create_shared_memory_region(name, "/" + name, size)
        try:
            client.register_system_shared_memory(name, "/" + name, size, headers=headers)
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

    def close(self, client: Any) -> None:
        import tritonclient.utils.shared_memory as shm

        try:
            client.unregister_system_shared_memory(self.name, headers=self.headers)
        except Exception:  # the server may be gone already
            pass
        shm.destroy_shared_memory_region(self.handle)


class Transport:
    """One connection to the server (gRPC channel or HTTP connection) and its shm regions.

    Not thread-safe: use one per thread (:class:`exatrkx.service.runner.Runner` does).
    """

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        if config.protocol == "grpc":
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
        else:
            self.client = tc.InferenceServerClient(config.address)
        key = config.key
        header = GRPC_API_KEY_HEADER if config.protocol == "grpc" else API_KEY_HEADER
        #: Headers sent with every request (the key of the restricted APIs).
        self.headers: dict[str, str] | None = {header: key} if key else None
        self.requests: list[RequestTiming] = []
        #: Requests sent again after a transient failure (over this transport's life).
        self.resent = 0
        self._rng = random.Random()
        self._regions: dict[str, _Region] = {}
        self._prefix = f"exatrkx-{os.getpid()}-{next(_REGION_IDS)}"

    # ------------------------------------------------------------------ server queries

    def _call(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs, headers=...)``; Triton and socket errors -> the package's."""
        try:
            return func(*args, headers=self.headers, **kwargs)
        except self._error as exc:
            raise remote_error(what, exc.status(), exc.message() or str(exc)) from None
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
        if region is None:
            size = max(64, cfg.bytes_per_hit(tensor) * cfg.shm_max_hits)
            try:
                region = _Region(self.client, f"{self._prefix}-{key}", size, self.headers)
            except self._error as exc:
                raise remote_error("shared memory", exc.status(),
                                   exc.message() or str(exc)) from None
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
        kwargs = ({"client_timeout": self.config.timeout_s}
                  if self.config.protocol == "grpc" and self.config.timeout_s else {})
        t0 = time.perf_counter()
        result = self._call_retrying(model, self.client.infer, model, infer_inputs,
                                     outputs=requested, **kwargs)
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
            region.close(self.client)
        self._regions.clear()
        self.client.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_ready(url: str | None, protocol: Protocol = "grpc", timeout_s: float = 1.0) -> bool:
    """True when the server at ``url`` answers ready within ``timeout_s`` (never raises)."""
    try:
        config = ClientConfig(url=url, protocol=protocol, timeout_s=timeout_s, retries=0)
        if protocol == "grpc":
            import tritonclient.grpc as tg

            with tg.InferenceServerClient(config.address) as client:
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
