"""The detector, from ACTS: the generic (TrackML) detector's tracking geometry and field.

Everything the package knows about the detector is read from the geometry ACTS builds:

    det = Detector()                 # about 0.5 s; keep it for the process
    det.layers                       # one row per sensitive layer (position, extent, modules)
    det.world                        # (r_max, half_z) of the world volume, mm

Volume ids: pixels 7, 8, 9; short strips 12, 13, 14; long strips 16, 17, 18 (barrel in the
middle). A geometry id is 64 bits: volume = id >> 56, layer = (id >> 36) & 0xfff,
module (ACTS' "sensitive") = (id >> 8) & 0xfffff; the TrackML columns ``volume_id``,
``layer_id``, ``module_id`` carry them.

The readout of each sub-detector (:data:`PITCH`, the digitization's setting, not geometry)
gives the smearing of digitization: sigma = pitch / sqrt(12) along each local axis.
"""

from __future__ import annotations

import functools
import json
import math
from functools import cached_property
from pathlib import Path
from typing import Any

import acts
import acts.examples
import numpy as np
import pandas as pd

from exatrkx.constants import B_FIELD_T

#: Sub-detector of each volume id.
SUBDETECTORS: dict[int, str] = {7: "pixel", 8: "pixel", 9: "pixel",
                                12: "short_strip", 13: "short_strip", 14: "short_strip",
                                16: "long_strip", 17: "long_strip", 18: "long_strip"}
#: Readout pitch (local u, local v) in mm of each sub-detector.
PITCH: dict[str, tuple[float, float]] = {"pixel": (0.050, 0.050),
                                         "short_strip": (0.080, 1.2),
                                         "long_strip": (0.120, 10.8)}


def split_geometry_id(gid: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(volume, layer, module) of 64-bit geometry ids."""
    g = np.asarray(gid, dtype=np.uint64)
    return ((g >> np.uint64(56)).astype(np.int64),
            ((g >> np.uint64(36)) & np.uint64(0xFFF)).astype(np.int64),
            ((g >> np.uint64(8)) & np.uint64(0xFFFFF)).astype(np.int64))


def join_geometry_id(volume: np.ndarray | int, layer: np.ndarray | int,
                     module: np.ndarray | int) -> np.ndarray:
    """64-bit geometry ids of sensitive modules from (volume, layer, module)."""
    v, lay, m = (np.asarray(a, dtype=np.uint64) for a in (volume, layer, module))
    return (v << np.uint64(56)) | (lay << np.uint64(36)) | (m << np.uint64(8))


def _corners(bounds: Any) -> list[tuple[float, float]]:
    """Local corner points of a rectangle or trapezoid module."""
    v = bounds.values()
    kind = str(bounds.type)
    if kind.endswith("Rectangle"):  # minX, minY, maxX, maxY
        return [(v[0], v[1]), (v[2], v[1]), (v[2], v[3]), (v[0], v[3])]
    if kind.endswith("Trapezoid"):  # halfXnegY, halfXposY, halfY, rotation
        return [(-v[0], -v[2]), (v[0], -v[2]), (v[1], v[2]), (-v[1], v[2])]
    raise ValueError(f"unexpected module bounds {kind}")


class Detector:
    """The generic detector of ACTS with its 2 T solenoid field.

    Args:
        field_t: field along z, tesla.
        log_level: ACTS' log level while building.
    """

    def __init__(self, field_t: float = B_FIELD_T,
                 log_level: Any = acts.logging.WARNING) -> None:
        cfg = acts.examples.GenericDetector.Config()
        cfg.logLevel = cfg.layerLogLevel = cfg.volumeLogLevel = cfg.surfaceLogLevel = log_level
        #: ACTS' detector (owns the detector elements the surfaces point to: keep it alive).
        self.detector = acts.examples.GenericDetector(cfg)
        self.tracking_geometry = self.detector.trackingGeometry()
        self.field_t = field_t
        self.field = acts.ConstantBField(acts.Vector3(0.0, 0.0, field_t * acts.UnitConstants.T))
        self.context = acts.GeometryContext.dangerouslyDefaultConstruct()

    @cached_property
    def world(self) -> tuple[float, float]:
        """(r_max, half_z) of the world volume, mm: particles produced outside it cannot be
        simulated."""
        values = self.tracking_geometry.highestTrackingVolume.volumeBounds.values()
        return float(values[1]), float(values[2])

    @cached_property
    def modules(self) -> pd.DataFrame:
        """One row per sensitive module: ``geometry_id`` (uint64), ``volume_id``,
        ``layer_id``, ``module_id``, centre ``cx, cy, cz, cr`` (mm), ``thickness``, the
        active area's ``r_lo, r_hi, z_lo, z_hi`` (from the corners) and its ``area`` (mm2)."""
        rows = []
        along = acts.Vector3(1.0, 0.0, 0.0)  # any direction: planar surfaces

        def visit(surface: Any) -> None:
            gid = surface.geometryId
            c = surface.center(self.context)
            corners = _corners(surface.bounds)
            pts = np.array([list(surface.localToGlobal(self.context, acts.Vector2(x, y), along))
                            for x, y in corners])
            r = np.hypot(pts[:, 0], pts[:, 1])
            loc = np.array(corners)
            area = 0.5 * abs(float(np.dot(loc[:, 0], np.roll(loc[:, 1], 1))
                                   - np.dot(loc[:, 1], np.roll(loc[:, 0], 1))))
            rows.append((gid.value, gid.volume, gid.layer, gid.sensitive, c[0], c[1], c[2],
                         surface.thickness, r.min(), r.max(), pts[:, 2].min(),
                         pts[:, 2].max(), area))

        self.tracking_geometry.visitSurfaces(visit)
        df = pd.DataFrame(rows, columns=["geometry_id", "volume_id", "layer_id", "module_id",
                                         "cx", "cy", "cz", "thickness", "r_lo", "r_hi",
                                         "z_lo", "z_hi", "area"])
        df["geometry_id"] = df["geometry_id"].astype(np.uint64)
        df["cr"] = np.hypot(df["cx"], df["cy"])
        return df

    @cached_property
    def layers(self) -> pd.DataFrame:
        """One row per sensitive layer: ``volume_id, layer_id, subdetector``, ``barrel``
        (modules at one radius; else a disk at one z), ``position`` (mean module radius of a
        barrel layer, mean z of a disk, mm), the active ``r_min, r_max, z_min, z_max`` and
        ``modules``."""
        out = []
        for (vol, lay), g in self.modules.groupby(["volume_id", "layer_id"]):
            barrel = float(g["cr"].std()) < float(g["cz"].std())
            out.append({"volume_id": int(vol), "layer_id": int(lay),
                        "subdetector": SUBDETECTORS.get(int(vol), "unknown"),
                        "barrel": barrel,
                        "position": float(g["cr"].mean() if barrel else g["cz"].mean()),
                        "r_min": float(g["r_lo"].min()), "r_max": float(g["r_hi"].max()),
                        "z_min": float(g["z_lo"].min()), "z_max": float(g["z_hi"].max()),
                        "modules": len(g)})
        return pd.DataFrame(out)

    @cached_property
    def _surfaces(self) -> dict[int, Any]:
        return {int(k.value): v for k, v in self.tracking_geometry.geoIdSurfaceMap().items()}

    def surface(self, geometry_id: int) -> Any:
        """The surface of a geometry id.

        Raises:
            KeyError: no surface has this id.
        """
        return self._surfaces[int(geometry_id)]

    def to_global(self, geometry_id: int, u: float, v: float) -> np.ndarray:
        """Global position (mm) of local (u, v) on a module."""
        return np.array(list(self.surface(geometry_id).localToGlobal(
            self.context, acts.Vector2(u, v), acts.Vector3(1.0, 0.0, 0.0))))

    def random_points(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` points uniform over the sensitive area: geometry ids ``[n]``, positions
        ``[n, 3]`` (for noise hits)."""
        mods = self.modules
        if n == 0:
            return np.zeros(0, np.uint64), np.zeros((0, 3))
        area = mods["area"].to_numpy()
        pick = rng.choice(len(mods), size=n, p=area / area.sum())
        gids = mods["geometry_id"].to_numpy()[pick]
        out = np.zeros((n, 3))
        for k, gid in enumerate(gids):
            corners = np.array(_corners(self.surface(int(gid)).bounds))
            lo, hi = corners.min(axis=0), corners.max(axis=0)
            while True:  # a trapezoid: draw in its box until inside
                u, v = rng.uniform(lo, hi)
                if _inside(corners, u, v):
                    break
            out[k] = self.to_global(int(gid), u, v)
        return gids, out


@functools.lru_cache(maxsize=1)
def layer_table() -> pd.DataFrame:
    """:attr:`Detector.layers` of the generic detector, built once per process (read-only
    use: event displays draw the layers from it)."""
    return Detector().layers


def _inside(corners: np.ndarray, u: float, v: float) -> bool:
    """Point in a convex polygon (corners in order)."""
    signs = []
    for (x0, y0), (x1, y1) in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        signs.append((x1 - x0) * (v - y0) - (y1 - y0) * (u - x0))
    return all(s >= 0 for s in signs) or all(s <= 0 for s in signs)


def write_digitization_config(path: str | Path) -> Path:
    """The smearing digitization of every volume (Gaussian, sigma = pitch / sqrt(12) on both
    local axes) as the JSON ``acts.examples.json.readDigiConfigFromJson`` reads (pyacts does
    not bind the smearing config itself)."""
    entries = []
    for volume, sub in sorted(SUBDETECTORS.items()):
        pu, pv = PITCH[sub]
        entries.append({"volume": volume, "value": {"smearing": [
            {"index": 0, "mean": 0.0, "stddev": pu / math.sqrt(12.0), "type": "Gauss"},
            {"index": 1, "mean": 0.0, "stddev": pv / math.sqrt(12.0), "type": "Gauss"}]}})
    doc = {"acts-geometry-hierarchy-map": {"format-version": 0,
                                           "value-identifier": "digitization-configuration"},
           "entries": entries}
    out = Path(path)
    out.write_text(json.dumps(doc, indent=1))
    return out
