"""The frames of the generic detector's modules in numpy, for reading hits into ACTS.

The detector itself (ACTS' generic detector in its 2 T field, the readout pitch of each
sub-detector) is :mod:`exatrkx.sim.geometry`'s, the one the simulation uses.
``Surface.globalToLocal`` is not bound in pyacts 48.1; each planar module's frame (centre,
local axes, normal) is read from three ``localToGlobal`` calls instead, so that the hit
positions of a whole event turn into local coordinates at once.
"""

from __future__ import annotations

import weakref

import acts
import numpy as np

from exatrkx.sim.geometry import PITCH, SUBDETECTORS, Detector, join_geometry_id

__all__ = ["Detector", "SurfaceFrames", "surface_frames"]


class SurfaceFrames:
    """Centre ``c``, local axes ``u``, ``v`` and normal ``n`` of every sensitive module,
    sorted by geometry id (``key``), with each module's volume, layer, module and the
    variances of a hit on it (the digitization's resolution: pitch^2 / 12 along each local
    axis)."""

    def __init__(self, detector: Detector) -> None:
        gctx = detector.context
        direction = acts.Vector3(0.0, 0.0, 1.0)  # unused by planar surfaces
        origin, unit0 = acts.Vector2(0.0, 0.0), acts.Vector2(1.0, 0.0)
        unit1 = acts.Vector2(0.0, 1.0)
        ids, points = [], []
        for gid, surface in detector.tracking_geometry.geoIdSurfaceMap().items():
            if gid.sensitive == 0:
                continue
            ids.append((gid.value, gid.volume, gid.layer, gid.sensitive))
            points.append([*surface.localToGlobal(gctx, origin, direction),
                           *surface.localToGlobal(gctx, unit0, direction),
                           *surface.localToGlobal(gctx, unit1, direction)])
        order = np.argsort(np.array([i[0] for i in ids], dtype=np.uint64), kind="stable")
        table = np.array([i[1:] for i in ids], dtype=np.int64).reshape(-1, 3)[order]
        xyz = np.array(points, dtype=np.float64).reshape(-1, 9)[order]
        self.key = np.array([i[0] for i in ids], dtype=np.uint64)[order]
        self.volume, self.layer, self.module = table[:, 0], table[:, 1], table[:, 2]
        self.c = xyz[:, 0:3]
        self.u = xyz[:, 3:6] - self.c
        self.v = xyz[:, 6:9] - self.c
        self.n = np.cross(self.u, self.v)
        pitch = np.array([PITCH[SUBDETECTORS[int(v)]] for v in self.volume]).reshape(-1, 2)
        self.variance = pitch ** 2 / 12.0

    def __len__(self) -> int:
        return int(self.key.size)

    def rows(self, volume: np.ndarray, layer: np.ndarray, module: np.ndarray) -> np.ndarray:
        """Row of each (volume, layer, module); -1 where no module has these ids."""
        keys = join_geometry_id(volume, layer, module).reshape(-1)
        if keys.size == 0:
            return np.zeros(0, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.key, keys), 0, len(self.key) - 1)
        return np.where(self.key[pos] == keys, pos, -1).astype(np.int64)

    def to_local(self, rows: np.ndarray, xyz: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local 0, local 1 and the distance from the module plane (mm) of points ``[N, 3]``
        on the modules of ``rows``."""
        d = np.asarray(xyz, dtype=np.float64).reshape(-1, 3) - self.c[rows]
        return ((d * self.u[rows]).sum(1), (d * self.v[rows]).sum(1),
                (d * self.n[rows]).sum(1))

    def to_global(self, rows: np.ndarray, loc0: np.ndarray, loc1: np.ndarray) -> np.ndarray:
        """Global positions ``[N, 3]`` (mm) of local coordinates on the modules of ``rows``."""
        return (self.c[rows] + self.u[rows] * np.asarray(loc0)[:, None]
                + self.v[rows] * np.asarray(loc1)[:, None])


_FRAMES: weakref.WeakKeyDictionary[Detector, SurfaceFrames] = weakref.WeakKeyDictionary()


def surface_frames(detector: Detector) -> SurfaceFrames:
    """The module frames of ``detector`` (built once per detector: about a second)."""
    frames = _FRAMES.get(detector)
    if frames is None:
        frames = _FRAMES[detector] = SurfaceFrames(detector)
    return frames
