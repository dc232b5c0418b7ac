"""Runners: events in, labels and timing out, for any service option 0-5.

A :class:`Runner` holds ``concurrency`` workers; each is a pipeline (option 0: all stages in
this process; options 1-3: some stage callables replaced by :class:`RemoteStage` objects) or
one :class:`RemoteStage` for the whole event (options 4-5), plus its own connection. The
same runner serves ``exatrkx reconstruct``, the study and any program that embeds the client
(:func:`make_runner`).

Each event gives an :class:`EventResult`: labels, client-side timing (ms per stage and per
request) and, when asked and computed in this process (options 0-3), the intermediate graph.
Triton's own per-model figures come from :meth:`Runner.server_statistics` (see
:func:`exatrkx.service.stats.stats_delta`).
"""

from __future__ import annotations

import dataclasses
import json
import queue
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from exatrkx.config import PipelineConfig
from exatrkx.contract import (
    CONFIG_PARAMETER,
    DEFAULT_MAX_HITS,
    OPTIONS,
    STAGE_MODELS,
    Option,
    Protocol,
    option,
)
from exatrkx.core.features import check_features
from exatrkx.core.models import Nets, load_models, script_models
from exatrkx.core.pipeline import Pipeline, PipelineResult, local_stages
from exatrkx.errors import InputError
from exatrkx.service.remote import RemoteStage, as_numpy, remote_stages
from exatrkx.service.stats import RawStats
from exatrkx.service.tls import ClientTls
from exatrkx.service.transport import ClientConfig, RequestTiming, Transport

T = TypeVar("T")
R = TypeVar("R")


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


@dataclass
class EventResult:
    """One event's outcome.

    Attributes:
        labels: int64 ``[N]`` track of each hit, -1 = none.
        timing: client-side timing.
        graph: with ``keep_graph`` and options 0-3: numpy ``build_edges``,
            ``filter_edges`` ([2, E] int64) and ``gnn_scores`` ([E'] float32); else empty.
        edges: edge counts per stage (``build``, ``filter``, ``gnn``) where this process
            saw them (options 0-3); empty for options 4-5.
    """

    labels: np.ndarray
    timing: EventTiming
    graph: dict[str, np.ndarray] = field(default_factory=dict)
    edges: dict[str, int] = field(default_factory=dict)


#: ``(features, keep_graph) -> PipelineResult`` of one worker.
WorkerRun = Callable[[np.ndarray, bool], PipelineResult]


@dataclass
class _Worker:
    """One thread's transport and its pipeline (or whole-event stage)."""

    transport: Transport | None
    run: WorkerRun


def run_concurrently(run: Callable[[T], R], items: Iterable[T], concurrency: int) -> list[R]:
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

    Attributes:
        option: the service option.
        client: how the server is reached (None for option 0).
        config: the pipeline settings the labels come from (the server's for options 1-5
            when it publishes them, else the local ones).
    """

    def __init__(self, option: Option, workers: list[_Worker], client: ClientConfig | None,
                 config: PipelineConfig | None = None) -> None:
        self.option = option
        self.client = client
        self.config = config
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

    def run(self, features: np.ndarray | torch.Tensor, keep_graph: bool = False
            ) -> EventResult:
        """One event: features f32 ``[N, 3]`` -> labels i64 ``[N]``, timing, graph.

        Raises:
            InputError: bad features (here or refused by the server);
            ServerUnavailable, ServerFailure: the request did not give a result.
        """
        x = as_numpy(features)
        worker = self._workers.get()
        try:
            if worker.transport is not None:
                worker.transport.requests = []
            t0 = time.perf_counter()
            res = worker.run(x, keep_graph)
            total = (time.perf_counter() - t0) * 1e3
            requests = [] if worker.transport is None else list(worker.transport.requests)
            return EventResult(res.labels, EventTiming(total, dict(res.times_ms), requests),
                               res.graph, dict(res.edges))
        finally:
            self._workers.put(worker)

    def run_many(self, events: Iterable[np.ndarray | torch.Tensor],
                 concurrency: int | None = None) -> list[EventResult]:
        """Many events with up to ``concurrency`` (default: all workers) in flight."""
        return run_concurrently(self.run, events,
                                min(concurrency or self.concurrency, self.concurrency))

    def server_statistics(self) -> RawStats:
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


def warm_up(runner: Runner) -> None:
    """One synthetic event through the runner before anything is timed (TorchScript
    optimises on its first calls; the first request opens the connection)."""
    rng = np.random.default_rng(0)
    runner.run(np.stack([rng.uniform(0.03, 1, 300), rng.uniform(-1, 1, 300),
                         rng.uniform(-1, 1, 300)], axis=1).astype(np.float32))


def server_pipeline_config(transport: Transport) -> PipelineConfig | None:
    """The pipeline settings the server's models use (from their config parameters)."""
    raw = transport.model_parameters(STAGE_MODELS["build"].name).get(CONFIG_PARAMETER)
    if not raw:
        return None
    return PipelineConfig.from_dict(json.loads(raw).get("pipeline", {}))


def make_runner(option_number: int, url: str | None = None, protocol: Protocol = "grpc",
                shm: bool = False, config: PipelineConfig | None = None, *,
                weights_dir: str | Path | None = None, concurrency: int = 1,
                nets: Nets | None = None, shm_max_hits: int = DEFAULT_MAX_HITS,
                timeout_s: float | None = None, device: str = "cpu",
                scripted: bool = True, retries: int | None = None,
                api_key: str | None = None, num_threads: int | None = None,
                tls: ClientTls | None = None) -> Runner:
    """A :class:`Runner` for one service option.

    Args:
        option_number: 0-5 (see :mod:`exatrkx.contract`).
        url: server ``host:port`` (options 1-5; default ``127.0.0.1`` and the protocol's port).
        protocol: ``"grpc"`` or ``"http"``.
        shm: use Triton system shared memory (client on the server's host).
        config: pipeline settings of the local stages (options 0-3); default: those the
            server's models use (options 1-3), else those stored with the weights.
        weights_dir: weights of the local nets (None: the shipped ones).
        concurrency: events in flight at once (one connection each).
        nets: nets already in memory instead of loading ``weights_dir``.
        shm_max_hits: events up to this many hits go through shared memory (see
            :mod:`exatrkx.service.transport`).
        timeout_s: per-request client timeout in seconds (None: ClientConfig's default).
        device: where local stages compute.
        scripted: run the local nets as TorchScript (as the server does).
        retries: resends after transient failures (None: ClientConfig's default).
        api_key: the server's key (None: ``$EXATRKX_API_KEY``).
        num_threads: torch intra-op threads of this process (None: leave as they are).
        tls: TLS of the gRPC connections (None: plain text).

    Raises:
        InputError: bad option/concurrency, missing weights, unusable TLS files;
        ServerUnavailable: no ready server, or it refuses the connection (TLS: one line
        naming the cause).
    """
    try:
        opt = option(option_number)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    spec = OPTIONS[opt]
    if concurrency < 1:
        raise InputError("concurrency must be >= 1")
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    server_cfg: PipelineConfig | None = None
    client_cfg: ClientConfig | None = None
    if spec.remote:
        defaults = ClientConfig()
        base = ClientConfig(url=url, protocol=protocol, shared_memory=shm,
                            shm_max_hits=shm_max_hits,
                            timeout_s=defaults.timeout_s if timeout_s is None else timeout_s,
                            retries=defaults.retries if retries is None else retries,
                            api_key=api_key, tls=tls)
        with Transport(dataclasses.replace(base, timeout_s=min(base.timeout_s or 10.0, 10.0),
                                           retries=0)) as probe:
            probe.check_ready()
            server_cfg = server_pipeline_config(probe)
        sizing = server_cfg or config or PipelineConfig()
        client_cfg = dataclasses.replace(base, max_neighbours=sizing.max_neighbours,
                                         embed_dim=sizing.embed.out_dim)
    local: Nets | None = None
    if spec.whole_event_model is None:
        if nets is None or config is None:
            loaded, stored = load_models(weights_dir)
            nets = nets if nets is not None else loaded
            config = config if config is not None else (server_cfg or stored)
        local = (script_models(nets) if scripted else nets).to(device).eval()
    workers = []
    for _ in range(concurrency):
        transport = Transport(client_cfg) if client_cfg is not None else None
        if spec.whole_event_model is not None:
            assert transport is not None
            stage = RemoteStage(transport, spec.whole_event_model)
            workers.append(_Worker(transport, _whole_event(stage)))
            continue
        assert local is not None and config is not None
        stages = local_stages(local, config, device)
        if transport is not None:
            stages = remote_stages(stages, transport, spec.remote_stages)
        pipeline = Pipeline(stages, device, gnn_cut=config.gnn_cut)
        workers.append(_Worker(transport, pipeline.run))
    return Runner(opt, workers, client_cfg, server_cfg or config)


def _whole_event(stage: RemoteStage) -> WorkerRun:
    def run(features: np.ndarray, keep_graph: bool) -> PipelineResult:
        feats = check_features(features)
        if feats.shape[0] < 2:  # as the in-process pipeline: no edges, no tracks
            return PipelineResult(np.full(feats.shape[0], -1, dtype=np.int64),
                                  {stage.model: 0.0})
        t0 = time.perf_counter()
        labels = stage(feats).numpy()
        return PipelineResult(labels, {stage.model: (time.perf_counter() - t0) * 1e3})

    return run

