"""Our track finder as an ACTS algorithm: spacepoints in, proto-tracks out, through the
package's runner for any service option (in process or on a Triton server).

Per event, :class:`GnnTrackFinder` reads the spacepoints ACTS made, turns their positions
into the pipeline's features, sends them through the runner (options 1-5: requests to the
server), and writes one proto-track (the measurement indices of its hits, ordered by r) per
track label with at least :data:`~exatrkx.acts.settings.MIN_PROTO_TRACK_HITS` hits. The
measurement index of each spacepoint comes from its source link (ACTS keeps the
measurements' order; :func:`measurement_indices` checks it on a sample and reads every link
only when it does not hold).

A failure fails the event in the ledger (its message names the problem, the event ends with
``SKIP``); an unreachable server also stops the run's use of it (see
:mod:`exatrkx.acts.ledger`).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import acts
import acts.examples
import numpy as np

from exatrkx.acts.ledger import EventLedger
from exatrkx.acts.settings import MIN_PROTO_TRACK_HITS
from exatrkx.core.features import features_from_xyz
from exatrkx.errors import ExatrkxError
from exatrkx.service.runner import EventResult

#: Spacepoints whose measurement index :func:`measurement_indices` reads to check the order.
ORDER_PROBES = 64


class LabelRunner(Protocol):
    """What the finder needs of a runner (:class:`exatrkx.service.runner.Runner`)."""

    def run(self, features: np.ndarray, keep_graph: bool = False) -> EventResult: ...


def measurement_indices(spacepoints: Any) -> np.ndarray:
    """The measurement index of each spacepoint (its first source link; one per spacepoint
    for pixels and for single strips).

    ACTS' ``SpacePointMaker`` over every volume writes spacepoint ``i`` from measurement
    ``i``; :data:`ORDER_PROBES` spacepoints spread over the container (the first and the
    last among them) are checked for that, and only when one differs are all read through
    the bindings (2-4 us each: the cost this spares).
    """
    n = len(spacepoints)
    probes = np.unique(np.linspace(0, n - 1, min(n, ORDER_PROBES)).astype(np.int64))
    if all(_measurement(spacepoints[int(i)]) == i for i in probes):
        return np.arange(n, dtype=np.int64)
    return np.fromiter((_measurement(sp) for sp in spacepoints), dtype=np.int64, count=n)


def _measurement(spacepoint: Any) -> int:
    return int(acts.examples.IndexSourceLink.fromSourceLink(
        next(iter(spacepoint.sourceLinks))).index())


def group_tracks(labels: np.ndarray, measurement: np.ndarray, r: np.ndarray,
                 min_hits: int = MIN_PROTO_TRACK_HITS) -> list[np.ndarray]:
    """The measurement indices of each label >= 0 with at least ``min_hits`` hits, ordered
    by r within a track and by label between tracks."""
    labels = np.asarray(labels, dtype=np.int64)
    keep = np.flatnonzero(labels >= 0)
    if keep.size == 0:
        return []
    order = keep[np.lexsort((r[keep], labels[keep]))]
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return [measurement[g] for g in np.split(order, bounds) if g.size >= min_hits]


class GnnTrackFinder(acts.examples.IAlgorithm):
    """Spacepoints -> the package's runner -> proto-tracks of measurement indices.

    Args:
        name: the finder's name (its notes in the ledger, its algorithm name).
        runner: labels for features (:func:`exatrkx.make_runner` of any option).
        ledger: the run's events.
        spacepoints: whiteboard name of the input spacepoints.
        prototracks: whiteboard name of the output proto-tracks.
        min_hits: shortest proto-track handed on.

    Its notes per event (ms): ``features_ms`` (spacepoint positions to features),
    ``labels_ms`` (the runner: the request for options 1-5), ``index_ms`` (spacepoints to
    measurement indices), ``prototracks_ms`` (grouping and writing the proto-tracks).
    """

    def __init__(self, name: str, runner: LabelRunner, ledger: EventLedger, *,
                 spacepoints: str, prototracks: str, min_hits: int = MIN_PROTO_TRACK_HITS,
                 level: Any = acts.logging.WARNING) -> None:
        super().__init__(f"ExatrkxFinder_{name}", level)
        self.finder = name
        self.runner = runner
        self.ledger = ledger
        self.min_hits = min_hits
        self._in = acts.examples.ReadDataHandle(self, acts.SpacePointContainer,
                                                "InputSpacePoints")
        self._in.initialize(spacepoints)
        self._out = acts.examples.WriteDataHandle(self, acts.examples.ProtoTrackContainer,
                                                  "OutputProtoTracks")
        self._out.initialize(prototracks)

    def execute(self, ctx: Any) -> Any:
        number = int(ctx.eventNumber)
        state = self.ledger.state(number)
        spacepoints = self._in(ctx.eventStore)
        t0 = time.perf_counter()
        xyz = np.stack([np.asarray(spacepoints.x), np.asarray(spacepoints.y),
                        np.asarray(spacepoints.z)], axis=1).astype(np.float64)
        features = features_from_xyz(xyz)
        t1 = t_labels = time.perf_counter()
        try:
            if features.shape[0] == 0:
                labels, measurement = np.zeros(0, np.int64), np.zeros(0, np.int64)
            else:
                labels = np.asarray(self.runner.run(features).labels)
                t_labels = time.perf_counter()
                measurement = measurement_indices(spacepoints)
                if labels.shape != (features.shape[0],):
                    raise ExatrkxError(f"the runner gave {labels.shape[0]} labels for "
                                       f"{features.shape[0]} spacepoints")
        except ExatrkxError as exc:
            self.ledger.fail(number, exc)
            return acts.examples.ProcessCode.SKIP
        except Exception as exc:  # a finder's bug must not end the run
            self.ledger.fail(number, ExatrkxError(
                f"the {self.finder} finder failed ({type(exc).__name__}: {exc})"))
            return acts.examples.ProcessCode.SKIP
        t2 = time.perf_counter()
        tracks = group_tracks(labels, measurement, np.hypot(xyz[:, 0], xyz[:, 1]),
                              self.min_hits)
        container = acts.examples.ProtoTrackContainer()
        for track in tracks:
            container.append(acts.examples.ProtoTrack(track.tolist()))
        self._out(ctx, container)  # moves the container
        t3 = time.perf_counter()
        state.notes[self.finder] = {
            "spacepoints": int(features.shape[0]), "prototracks": len(tracks),
            "prototrack_hits": int(sum(t.size for t in tracks)),
            "features_ms": (t1 - t0) * 1e3, "labels_ms": (t_labels - t1) * 1e3,
            "index_ms": (t2 - t_labels) * 1e3, "prototracks_ms": (t3 - t2) * 1e3}
        return acts.examples.ProcessCode.SUCCESS
