"""Events from TrackML files into ACTS: one measurement per hit.

The event files (``event<9 digits>-{hits,particles,truth}.csv``, read by
:func:`exatrkx.io.read_event` with its line-exact errors) come from an ACTS simulation of the
generic detector: ``volume_id``, ``layer_id``, ``module_id`` are ACTS' geometry-id fields and
each hit lies on its module. Each hit becomes a 2D measurement on that module at the hit's
local position, with the resolution of the digitization (pitch / sqrt(12) along each local
axis), in geometry-id order (then hit id), as ACTS' digitization orders them. The truth
stays with the :class:`~exatrkx.io.Event` for scoring; ACTS' algorithms do not need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import acts
import acts.examples
import numpy as np

from exatrkx.acts.detector import SurfaceFrames
from exatrkx.acts.ledger import EventLedger
from exatrkx.errors import ExatrkxError, InputError
from exatrkx.io import Event, read_event

#: A hit further than this from its module's plane is no measurement on that module (mm).
MAX_PLANE_DISTANCE_MM = 0.05
#: Whiteboard names written here.
MEASUREMENTS = "measurements"
MEASUREMENT_SUBSET = "measurement_subset"


@dataclass
class HitMeasurements:
    """The hits of an event as measurements.

    Attributes:
        order: measurement index -> hit row of the event.
        module: frame row (:class:`SurfaceFrames`) of each measurement's module.
        loc0, loc1: local coordinates (mm) of each measurement.
    """

    order: np.ndarray
    module: np.ndarray
    loc0: np.ndarray
    loc1: np.ndarray


def hit_measurements(event: Event, frames: SurfaceFrames, source: Any = None
                     ) -> HitMeasurements:
    """Each hit's module and local position, in ACTS' measurement order.

    Raises:
        InputError: naming the file and hit: a hit on no module of the generic detector, or
            too far from its module's plane.
    """
    hits = event.hits
    where = f"{source}-hits.csv" if source is not None else event.name
    if hits is None or event.num_hits == 0:
        empty = np.zeros(0, dtype=np.int64)
        return HitMeasurements(empty, empty, np.zeros(0), np.zeros(0))
    ids = {c: hits[c].to_numpy(np.int64) for c in ("volume_id", "layer_id", "module_id")}
    rows = frames.rows(ids["volume_id"], ids["layer_id"], ids["module_id"])
    unknown = np.flatnonzero(rows < 0)
    if unknown.size:
        i = int(unknown[0])
        raise InputError(f"hit_id {event.hit_id[i]} is on volume {ids['volume_id'][i]}, layer "
                         f"{ids['layer_id'][i]}, module {ids['module_id'][i]}: no module of "
                         f"ACTS' generic detector ({unknown.size} such hits; the chain reads "
                         "events of an ACTS simulation)", where)
    xyz = hits[["x", "y", "z"]].to_numpy(np.float64)
    loc0, loc1, off = frames.to_local(rows, xyz)
    far = np.flatnonzero(np.abs(off) > MAX_PLANE_DISTANCE_MM)
    if far.size:
        i = int(far[0])
        raise InputError(f"hit_id {event.hit_id[i]} is {abs(off[i]):.3g} mm from the plane of "
                         f"its module (volume {ids['volume_id'][i]}, layer "
                         f"{ids['layer_id'][i]}, module {ids['module_id'][i]})", where)
    order = np.lexsort((event.hit_id, frames.key[rows]))
    return HitMeasurements(order, rows[order], loc0[order], loc1[order])


def measurement_container(hm: HitMeasurements, frames: SurfaceFrames) -> Any:
    """ACTS' ``MeasurementContainer`` of the measurements (index = position in ``hm``)."""
    container = acts.examples.MeasurementContainer()
    container.reserve(int(hm.order.size))
    gid = acts.GeometryIdentifier
    var = frames.variance[hm.module]
    for k, row in enumerate(hm.module.tolist()):
        container.emplaceMeasurement(
            gid(volume=int(frames.volume[row]), layer=int(frames.layer[row]),
                sensitive=int(frames.module[row])),
            [0, 1], [float(hm.loc0[k]), float(hm.loc1[k])], [float(var[k, 0]), float(var[k, 1])])
    return container


class EventReader(acts.examples.IAlgorithm):
    """First algorithm of the chain: reads event ``ctx.eventNumber`` of the ledger's sources
    and writes its ``measurements``.

    A file that cannot be used (unreadable, no truth, hits off the detector) fails the event
    with an :class:`InputError` naming the file; after the server went away, every later
    event is left out. Either way the event ends here (``SKIP``) and the next one starts.
    """

    def __init__(self, ledger: EventLedger, frames: SurfaceFrames,
                 level: Any = acts.logging.WARNING) -> None:
        super().__init__("ExatrkxEventReader", level)
        self.ledger = ledger
        self.frames = frames
        self._out = acts.examples.WriteDataHandle(self, acts.examples.MeasurementContainer,
                                                  "OutputMeasurements")
        self._out.initialize(MEASUREMENTS)

    def execute(self, ctx: Any) -> Any:
        number = int(ctx.eventNumber)
        state = self.ledger.begin(number)
        if self.ledger.stopped is not None:
            self.ledger.skip(number)
            return acts.examples.ProcessCode.SKIP
        try:
            event = read_event(state.source)
            if not event.has_truth:
                raise InputError("the chain needs truth (TrackML particles and truth files) to "
                                 "score the tracks; this event has none", state.source)
            hm = hit_measurements(event, self.frames, state.source)
            container = measurement_container(hm, self.frames)
        except ExatrkxError as exc:
            self.ledger.fail(number, exc)
            return acts.examples.ProcessCode.SKIP
        except Exception as exc:  # one bad file must not end the run
            self.ledger.fail(number, InputError(
                f"cannot read the event ({type(exc).__name__}: {exc})", state.source))
            return acts.examples.ProcessCode.SKIP
        state.event, state.order = event, hm.order
        self._out(ctx, container)  # moves the container
        return acts.examples.ProcessCode.SUCCESS


class MeasurementSubsetMaker(acts.examples.IAlgorithm):
    """``measurement_subset`` (every measurement), which the spacepoint maker and the CKF
    read. A subset points into the whiteboard's container, so it is made by a later
    algorithm than the one that wrote the measurements."""

    def __init__(self, level: Any = acts.logging.WARNING) -> None:
        super().__init__("ExatrkxMeasurementSubset", level)
        self._in = acts.examples.ReadDataHandle(self, acts.examples.MeasurementContainer,
                                                "InputMeasurements")
        self._in.initialize(MEASUREMENTS)
        self._out = acts.examples.WriteDataHandle(self, acts.examples.MeasurementSubset,
                                                  "OutputMeasurementSubset")
        self._out.initialize(MEASUREMENT_SUBSET)

    def execute(self, ctx: Any) -> Any:
        measurements = self._in(ctx.eventStore)
        self._out(ctx, acts.examples.MeasurementSubset(measurements,
                                                       list(range(len(measurements)))))
        return acts.examples.ProcessCode.SUCCESS
