"""The generic detector and its field, and the frames of its modules in numpy.

``Surface.globalToLocal`` is not bound in pyacts 48.1; each planar module's frame (centre,
local axes, normal) is read from three ``localToGlobal`` calls instead, so that hit
positions turn into local coordinates for a whole event at once.
"""

from __future__ import annotations

from typing import Any

import acts
import acts.examples
import numpy as np

from exatrkx.acts.settings import PITCH_MM, SUBDETECTORS
from exatrkx.constants import B_FIELD_T


class Detector:
    """ACTS' generic detector (the TrackML detector) in its solenoid field along z.

    Attributes:
        detector: ACTS' detector; it owns the detector elements the surfaces point to, so
            it lives as long as this object.
        tracking_geometry: its tracking geometry.
        field: the constant field.
        context: the geometry context (the generic detector has no alignment).
    """

    def __init__(self, field_t: float = B_FIELD_T, log_level: Any = acts.logging.WARNING) -> None:
        cfg = acts.examples.GenericDetector.Config()
        cfg.logLevel = cfg.layerLogLevel = cfg.volumeLogLevel = cfg.surfaceLogLevel = log_level
        self.detector = acts.examples.GenericDetector(cfg)
        self.tracking_geometry = self.detector.trackingGeometry()
        self.field = acts.ConstantBField(acts.Vector3(0.0, 0.0, field_t * acts.UnitConstants.T))
        self.context = acts.GeometryContext.dangerouslyDefaultConstruct()
        self._frames: SurfaceFrames | None = None

    @property
    def frames(self) -> SurfaceFrames:
        """The module frames (built on first use, about 0.3 s)."""
        if self._frames is None:
            self._frames = SurfaceFrames(self)
        return self._frames


def geometry_ids(volume: np.ndarray, layer: np.ndarray, module: np.ndarray) -> np.ndarray:
    """64-bit ACTS geometry ids of sensitive modules: volume << 56 | layer << 36 |
    module << 8 (uint64)."""
    v, lay, m = (np.asarray(a).astype(np.uint64) for a in (volume, layer, module))
    return (v << np.uint64(56)) | (lay << np.uint64(36)) | (m << np.uint64(8))


class SurfaceFrames:
    """Centre ``c``, local axes ``u``, ``v`` and normal ``n`` of every sensitive module,
    sorted by geometry id (``key``), with each module's volume, layer, module and the
    variances of a hit on it (pitch^2 / 12 along each local axis)."""

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
        pitch = np.array([PITCH_MM[SUBDETECTORS[int(v)]] for v in self.volume]).reshape(-1, 2)
        self.variance = pitch ** 2 / 12.0

    def __len__(self) -> int:
        return int(self.key.size)

    def rows(self, volume: np.ndarray, layer: np.ndarray, module: np.ndarray) -> np.ndarray:
        """Row of each (volume, layer, module); -1 where no module has these ids."""
        keys = geometry_ids(volume, layer, module)
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
