"""Triton client for the service options 0-5.

========  ==========================================  =========================
option    what runs remotely                          requests per event
========  ==========================================  =========================
0         nothing (the in-process pipeline)           0
1         embed, filter, gnn                          3
2         build, label                                2
3         every stage                                 5
4         the ``exatrkx`` ensemble                    1
5         the ``exatrkx_pipeline`` model              1
========  ==========================================  =========================

Options 1-3 are the in-process pipeline with some stage callables replaced by
:class:`RemoteStage` objects; options 4 and 5 are one :class:`RemoteStage` for the whole event.

Transports: gRPC (default) or HTTP, optionally with Triton system shared memory for the
tensors (client and server on one host). Shared-memory regions are sized for
``ClientConfig.shm_max_hits`` hits; a larger event is sent inline instead. Output regions are
sized by hard bounds: at most ``max_neighbours`` edges per hit, so EDGES/EDGES_KEPT need at
most ``16 * k`` bytes per hit and SCORES ``4 * k``.

Reliability: every request has a client-side timeout (``ClientConfig.timeout_s``) and is
retried ``ClientConfig.retries`` times with exponential backoff when it failed for a reason
that may pass (server unreachable or restarting, timeout, a backend process that died);
a refusal of the input itself (``INVALID_ARG``) or of the key is never retried. A request
that still fails raises :class:`RemoteError` (``transient`` tells which kind it was).

Security: the server's control APIs (statistics, shared memory, ...) need its key; the client
sends ``ClientConfig.api_key`` (default: ``$EXATRKX_API_KEY``) with every request.

Each event gives its labels and an :class:`EventTiming` (client-side ms per stage and per
request). Triton's own per-model figures (queue, compute input/infer/output) come from the
statistics endpoint: take :meth:`Runner.server_statistics` before and after a run and
:func:`stats_delta` gives per-request averages.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import queue
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from exatrkx.config import PipelineConfig
from exatrkx.errors import InputError
from exatrkx.io import check_features
from exatrkx.serve.launcher import API_KEY_ENV, API_KEY_HEADER, GRPC_API_KEY_HEADER

if TYPE_CHECKING:
    from exatrkx.models import Nets
    from exatrkx.pipeline import Pipeline, Stages

#: Stage names in pipeline order.
STAGES = ("embed", "build", "filter", "gnn", "label")
#: Stages served remotely by option 1-3.
REMOTE_STAGES: dict[int, tuple[str, ...]] = {
    0: (),
    1: ("embed", "filter", "gnn"),
    2: ("build", "label"),
    3: STAGES,
}
#: Models that run a whole event in one request (options 4 and 5).
WHOLE_EVENT_MODELS: dict[int, str] = {4: "exatrkx", 5: "exatrkx_pipeline"}
OPTIONS = (0, 1, 2, 3, 4, 5)
PROTOCOLS = ("grpc", "http")
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}

#: Tensor name -> (numpy dtype, Triton dtype).
TENSOR_TYPES: dict[str, tuple[type, str]] = {
    "FEATURES": (np.float32, "FP32"),
    "EMBEDDING": (np.float32, "FP32"),
    "EDGES": (np.int64, "INT64"),
    "EDGES_KEPT": (np.int64, "INT64"),
    "SCORES": (np.float32, "FP32"),
    "LABELS": (np.int64, "INT64"),
    "OUTPUT": (np.float32, "FP32"),
}
#: Stage model -> (input names, output name).
STAGE_IO: dict[str, tuple[tuple[str, ...], str]] = {
    "embed": (("FEATURES",), "EMBEDDING"),
    "build": (("EMBEDDING",), "EDGES"),
    "filter": (("FEATURES", "EDGES"), "EDGES_KEPT"),
    "gnn": (("FEATURES", "EDGES_KEPT"), "SCORES"),
    "label": (("FEATURES", "EDGES_KEPT", "SCORES"), "LABELS"),
    "exatrkx": (("FEATURES",), "LABELS"),
    "exatrkx_pipeline": (("FEATURES",), "LABELS"),
    "identity": (("FEATURES",), "OUTPUT"),
    "identity_ensemble5": (("FEATURES",), "OUTPUT"),
}


class RemoteError(InputError):
    """The server refused a request or could not be reached (the message says which).

    Attributes:
        transient: the failure may pass (unreachable, timeout, a backend process died);
            False for a refusal of the request itself.
        unreachable: no server answered at the address (down, restarting, wrong address).
    """

    def __init__(self, message: str, transient: bool = False,
                 unreachable: bool = False) -> None:
        super().__init__(message)
        self.transient = transient or unreachable
        self.unreachable = unreachable


#: gRPC status codes of failures that may pass when the request is sent again.
TRANSIENT_GRPC = frozenset(f"StatusCode.{code}" for code in (
    "UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "RESOURCE_EXHAUSTED",
    "ABORTED", "CANCELLED"))


def is_transient(status: str | None, message: str) -> bool:
    """Whether a Triton error (tritonclient's status string and message) may pass."""
    if "restricted" in message:  # a missing or wrong key: sending it again will not help
        return False
    status = status or ""
    if status.startswith("StatusCode."):
        return status in TRANSIENT_GRPC
    code = status.strip("[]")
    return not code or code.startswith("5") or code == "429"


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
    protocol: str = "grpc"
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
        k = self.max_neighbours
        return {"FEATURES": 12, "OUTPUT": 12, "EMBEDDING": 4 * self.embed_dim, "LABELS": 8,
                "EDGES": 16 * k, "EDGES_KEPT": 16 * k, "SCORES": 4 * k}[tensor]


@dataclass(frozen=True)
class RequestTiming:
    """One request as the client saw it."""

    model: str
    ms: float


@dataclass
class EventTiming:
    """Client-side timing of one event.

    Attributes:
        total_ms: the whole event, from features in to labels out.
        stages_ms: per pipeline stage (options 0-3), or the one request (options 4-5).
        requests: every request sent for the event, in order.
    """

    total_ms: float
    stages_ms: dict[str, float] = field(default_factory=dict)
    requests: list[RequestTiming] = field(default_factory=list)

    @property
    def request_ms(self) -> float:
        """Time spent in requests."""
        return sum(r.ms for r in self.requests)


@dataclass(frozen=True)
class ModelStats:
    """Triton's per-request averages for one model over a time window (ms)."""

    requests: int
    executions: int
    request_ms: float
    queue_ms: float
    compute_input_ms: float
    compute_infer_ms: float
    compute_output_ms: float

    def to_dict(self) -> dict[str, float]:
        return {"requests": self.requests, "executions": self.executions,
                "request_ms": self.request_ms, "queue_ms": self.queue_ms,
                "compute_input_ms": self.compute_input_ms,
                "compute_infer_ms": self.compute_infer_ms,
                "compute_output_ms": self.compute_output_ms}


_STAT_KEYS = ("success", "queue", "compute_input", "compute_infer", "compute_output")


def parse_statistics(raw: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Triton's statistics JSON -> ``{model: {count, executions, <key>_ns...}}``."""
    out: dict[str, dict[str, int]] = {}
    for model in raw.get("model_stats", []):
        stats = model.get("inference_stats", {})
        row = {"count": int(stats.get("success", {}).get("count", 0)),
               "executions": int(model.get("execution_count", 0))}
        for key in _STAT_KEYS:
            row[f"{key}_ns"] = int(stats.get(key, {}).get("ns", 0))
        out[model["name"]] = row
    return out


def stats_delta(before: Mapping[str, Mapping[str, int]],
                after: Mapping[str, Mapping[str, int]]) -> dict[str, ModelStats]:
    """Per-request averages of the models that served requests between two snapshots."""
    out: dict[str, ModelStats] = {}
    for name, now in after.items():
        then = before.get(name, {})
        n = now["count"] - then.get("count", 0)
        if n <= 0:
            continue

        def ms(key: str, now: Mapping[str, int] = now, then: Mapping[str, int] = then,
               n: int = n) -> float:
            return (now[f"{key}_ns"] - then.get(f"{key}_ns", 0)) / n / 1e6

        out[name] = ModelStats(
            requests=n, executions=now["executions"] - then.get("executions", 0),
            request_ms=ms("success"), queue_ms=ms("queue"),
            compute_input_ms=ms("compute_input"), compute_infer_ms=ms("compute_infer"),
            compute_output_ms=ms("compute_output"))
    return out


# ---------------------------------------------------------------------------- transport

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
        view = np.ndarray(array.shape, array.dtype, buffer=buf)
        view[...] = array
        del view

    def read(self, dtype: type, shape: Sequence[int]) -> np.ndarray:
        buf = self.handle._mpsm_handle.buf
        view = np.ndarray(tuple(shape), dtype, buffer=buf)
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

    Not thread-safe: use one per thread (:class:`Runner` does).
    """

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        if config.protocol == "grpc":
            import tritonclient.grpc as tc
        else:
            import tritonclient.http as tc
        from tritonclient.utils import InferenceServerException

        self._tc = tc
        self._error = InferenceServerException
        if config.protocol == "http" and config.timeout_s:
            self.client = tc.InferenceServerClient(config.address,
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
        """``func(*args, **kwargs, headers=...)``; Triton and socket errors -> RemoteError."""
        try:
            return func(*args, headers=self.headers, **kwargs)
        except self._error as exc:
            message = exc.message() or str(exc)
            unreachable = (exc.status() == "StatusCode.UNAVAILABLE"
                           and "restricted" not in message)
            raise RemoteError(f"{what}: {message}", is_transient(exc.status(), message),
                              unreachable) from None
        except (ConnectionError, OSError) as exc:
            raise RemoteError(f"{what}: cannot reach {self.config.address} "
                              f"({type(exc).__name__}: {exc})", unreachable=True) from None

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

    def is_ready(self) -> bool:
        """True when the server answers and is ready."""
        try:
            return bool(self.client.is_server_ready(headers=self.headers))
        except Exception:
            return False

    def model_parameters(self, model: str) -> dict[str, str]:
        """The string parameters of a model's config."""
        cfg = self._call(f"model {model}", self.client.get_model_config, model,
                         **({"as_json": True} if self.config.protocol == "grpc" else {}))
        cfg = cfg.get("config", cfg)
        return {k: v.get("string_value", "") for k, v in cfg.get("parameters", {}).items()}

    def statistics(self) -> dict[str, dict[str, int]]:
        """Cumulative per-model statistics now (see :func:`stats_delta`)."""
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
                message = exc.message() or str(exc)
                raise RemoteError(f"shared memory: {message}",
                                  transient=is_transient(exc.status(), message)) from None
            except OSError as exc:
                raise RemoteError(f"shared memory: {exc}") from None
            self._regions[key] = region
        return region

    def infer(self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str],
              num_hits: int | None = None) -> dict[str, np.ndarray]:
        """One request; returns the outputs as numpy arrays (owned by the caller).

        Args:
            model: model name.
            inputs: tensor name -> array (dtype as the model expects).
            outputs: names of the outputs wanted.
            num_hits: hits of the event (decides whether shared memory fits).
        """
        tc = self._tc
        n = num_hits if num_hits is not None else int(next(iter(inputs.values())).shape[0])
        infer_inputs = []
        for name, array in inputs.items():
            dtype, triton_type = TENSOR_TYPES[name]
            array = np.ascontiguousarray(array, dtype=dtype)
            inp = tc.InferInput(name, list(array.shape), triton_type)
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
                    raise RemoteError(f"{model}: the response has no output {name}")
                # responses are read-only buffers; the stages may write to their tensors
                got[name] = array if array.flags.writeable else array.copy()
            else:
                meta = result.get_output(name)
                shape = meta["shape"] if isinstance(meta, dict) else list(meta.shape)
                got[name] = region.read(TENSOR_TYPES[name][0], [int(s) for s in shape])
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


class RemoteStage:
    """A pipeline stage (or a whole event) run by a Triton model.

    Called with the stage's tensors (torch or numpy, in :data:`STAGE_IO` order, like the
    local stage callables of :class:`exatrkx.pipeline.Stages`); returns the output as a CPU
    torch tensor.
    """

    def __init__(self, transport: Transport, model: str) -> None:
        self.transport = transport
        self.model = model
        self.inputs, self.output = STAGE_IO[model]

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        arrays = {name: _numpy(t) for name, t in zip(self.inputs, tensors, strict=True)}
        num_hits = int(arrays[self.inputs[0]].shape[0])  # FEATURES or EMBEDDING: [N, ...]
        out = self.transport.infer(self.model, arrays, (self.output,), num_hits)
        return torch.from_numpy(out[self.output])


def _numpy(tensor: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(tensor, np.ndarray):
        return tensor
    return tensor.detach().cpu().numpy()


#: Triton's floor models: no work, one hop and five chained hops.
FLOOR_MODELS: dict[str, str] = {"hop": "identity", "ensemble5": "identity_ensemble5"}


def floor_times(transport: Transport, features: np.ndarray) -> dict[str, float]:
    """Client-side ms of one call to each floor model with this payload.

    Returns:
        ``{"hop": ms, "ensemble5": ms}`` (keys of :data:`FLOOR_MODELS`).
    """
    out = {}
    for key, model in FLOOR_MODELS.items():
        t0 = time.perf_counter()
        transport.infer(model, {"FEATURES": features}, ("OUTPUT",))
        out[key] = (time.perf_counter() - t0) * 1e3
    return out


# ---------------------------------------------------------------------------- runner

class _Worker:
    """One thread's transport and its pipeline (or whole-event stage)."""

    def __init__(self, transport: Transport | None,
                 run: Callable[[np.ndarray], tuple[np.ndarray, dict[str, float]]]) -> None:
        self.transport = transport
        self.run = run


def run_concurrently(run: Callable[[Any], Any], items: Iterable[Any],
                     concurrency: int) -> list[Any]:
    """``[run(x) for x in items]`` with up to ``concurrency`` calls in flight, in order."""
    items = list(items)
    if concurrency <= 1:
        return [run(x) for x in items]
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(run, items))


class Runner:
    """Runs events for one service option; labels plus timing per event.

    Build it with :func:`make_runner`. ``run`` is thread-safe: each call borrows one of
    ``concurrency`` workers (a transport plus a pipeline), so ``run_many`` keeps that many
    events in flight.
    """

    def __init__(self, option: int, workers: list[_Worker], client: ClientConfig | None) -> None:
        self.option = option
        self.client = client
        self._workers: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all = workers
        for worker in workers:
            self._workers.put(worker)

    @property
    def concurrency(self) -> int:
        return len(self._all)

    @property
    def resent(self) -> int:
        """Requests sent again after transient failures, over all workers so far."""
        return sum(w.transport.resent for w in self._all if w.transport is not None)

    def run(self, features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, EventTiming]:
        """One event: features f32 ``[N, 3]`` -> (labels i64 ``[N]``, timing).

        Raises:
            InputError: bad features; RemoteError: the server refused or failed.
        """
        x = _numpy(features)
        worker = self._workers.get()
        try:
            if worker.transport is not None:
                worker.transport.requests = []
            t0 = time.perf_counter()
            labels, stages_ms = worker.run(x)
            total = (time.perf_counter() - t0) * 1e3
            requests = [] if worker.transport is None else worker.transport.requests
            return labels, EventTiming(total, stages_ms, list(requests))
        finally:
            self._workers.put(worker)

    def run_many(self, events: Iterable[np.ndarray | torch.Tensor],
                 concurrency: int | None = None) -> list[tuple[np.ndarray, EventTiming]]:
        """Many events with up to ``concurrency`` (default: all workers) in flight."""
        return run_concurrently(self.run, events,
                                min(concurrency or self.concurrency, self.concurrency))

    def server_statistics(self) -> dict[str, dict[str, int]]:
        """Cumulative per-model server statistics (empty for option 0)."""
        worker = self._workers.get()
        try:
            return {} if worker.transport is None else worker.transport.statistics()
        finally:
            self._workers.put(worker)

    def close(self) -> None:
        """Close every connection and free shared memory."""
        for worker in self._all:
            if worker.transport is not None:
                worker.transport.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def server_pipeline_config(transport: Transport) -> PipelineConfig | None:
    """The pipeline settings the server's models use (from their config parameters)."""
    import json

    from exatrkx.serve.repository import CONFIG_PARAMETER

    raw = transport.model_parameters("build").get(CONFIG_PARAMETER)
    if not raw:
        return None
    return PipelineConfig.from_dict(json.loads(raw).get("pipeline", {}))


def make_runner(option: int, url: str | None = None, protocol: str = "grpc",
                shm: bool = False, config: PipelineConfig | None = None, *,
                weights_dir: str | Path | None = None, concurrency: int = 1,
                nets: Nets | None = None, shm_max_hits: int = 20_000,
                timeout_s: float | None = None, device: str = "cpu",
                scripted: bool = True, retries: int | None = None,
                api_key: str | None = None) -> Runner:
    """A :class:`Runner` for one service option.

    Args:
        option: 0-5 (see the module docstring).
        url: server ``host:port`` (options 1-5; default ``127.0.0.1`` and the protocol's port).
        protocol: ``"grpc"`` or ``"http"``.
        shm: use Triton system shared memory (client on the server's host).
        config: pipeline settings of the local stages (options 0-3); default: those the
            server's models use (options 1-3), else those stored with the weights.
        weights_dir: weights of the local nets (None: the shipped ones).
        concurrency: events in flight at once (one connection each).
        nets: nets already in memory instead of loading ``weights_dir``.
        shm_max_hits: shared-memory regions fit events up to this many hits.
        timeout_s: per-request client timeout in seconds (None: ClientConfig's default).
        device: where local stages compute.
        scripted: run the local nets as TorchScript (as the server does).
        retries: resends after transient failures (None: ClientConfig's default).
        api_key: the server's key (None: ``$EXATRKX_API_KEY``).

    Raises:
        InputError: bad option/concurrency, missing weights; RemoteError: no server.
    """
    if option not in OPTIONS:
        raise InputError(f"service option must be one of 0-5, got {option}")
    if concurrency < 1:
        raise InputError("concurrency must be >= 1")
    from exatrkx.pipeline import Pipeline, local_stages

    server_cfg: PipelineConfig | None = None
    client_cfg: ClientConfig | None = None
    if option != 0:
        given = {"timeout_s": timeout_s, "retries": retries, "api_key": api_key}
        base = ClientConfig(url=url, protocol=protocol, shared_memory=shm,
                            shm_max_hits=shm_max_hits,
                            **{k: v for k, v in given.items() if v is not None})
        with Transport(base) as probe:
            if not probe.is_ready():
                raise RemoteError(f"no ready Triton server at {base.address} ({protocol})")
            server_cfg = server_pipeline_config(probe)
        sizing = server_cfg or config or PipelineConfig()
        client_cfg = dataclasses.replace(base, max_neighbours=sizing.max_neighbours,
                                         embed_dim=sizing.embed.out_dim)
    local: Nets | None = None
    if option in REMOTE_STAGES:
        if nets is None or config is None:
            from exatrkx.models import load_models

            loaded, stored = load_models(weights_dir)
            nets = nets if nets is not None else loaded
            config = config if config is not None else (server_cfg or stored)
        if scripted:
            from exatrkx.models import script_models

            nets = script_models(nets)
        local = nets.to(device).eval()
    workers = []
    for _ in range(concurrency):
        transport = Transport(client_cfg) if client_cfg is not None else None
        if option in WHOLE_EVENT_MODELS:
            assert transport is not None
            stage = RemoteStage(transport, WHOLE_EVENT_MODELS[option])
            workers.append(_Worker(transport, _whole_event(stage)))
            continue
        assert local is not None and config is not None
        stages = local_stages(local, config, device)
        if transport is not None:
            stages = remote_stages(stages, transport, REMOTE_STAGES[option])
        workers.append(_Worker(transport, _pipeline_run(Pipeline(stages, device))))
    return Runner(option, workers, client_cfg)


def remote_stages(stages: Stages, transport: Transport, names: Sequence[str]) -> Stages:
    """A copy of ``stages`` with the stages ``names`` served by their Triton models."""
    return dataclasses.replace(stages, **{name: RemoteStage(transport, name) for name in names})


def _whole_event(stage: RemoteStage) -> Callable[[np.ndarray], tuple[np.ndarray,
                                                                    dict[str, float]]]:
    def run(features: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        feats = check_features(features)
        if feats.shape[0] < 2:  # as the in-process pipeline: no edges, no tracks
            return np.full(feats.shape[0], -1, dtype=np.int64), {stage.model: 0.0}
        t0 = time.perf_counter()
        labels = stage(feats).numpy()
        return labels, {stage.model: (time.perf_counter() - t0) * 1e3}

    return run


def _pipeline_run(pipeline: Pipeline) -> Callable[[np.ndarray], tuple[np.ndarray,
                                                                     dict[str, float]]]:
    def run(features: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        result = pipeline.run(features)
        return result.labels, dict(result.times_ms)

    return run
