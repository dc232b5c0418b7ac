"""Geometry of the TrackML / ACTS generic detector in a 2 T solenoid.

Three sub-detectors, each a barrel of cylinders and two endcaps of disks:

============  ========  =============================  =============================
sub-detector  volumes   barrel                         endcaps
============  ========  =============================  =============================
pixel         7, 8, 9   r = 32, 72, 116, 172 mm,       |z| = 600 ... 1500 mm (7 disks),
                        |z| < 490 mm                   r = 30 ... 175 mm
short strip   12,13,14  r = 260, 360, 500, 660 mm,     |z| = 1220 ... 2950 mm (6 disks),
                        |z| < 1080 mm                  r = 230 ... 700 mm
long strip    16,17,18  r = 820, 1020 mm, |z| < 1080   same |z|, r = 720 ... 1020 mm
============  ========  =============================  =============================

The barrel is the middle volume (8, 13, 17), the negative-z endcap the one below it (7, 12,
16) and the positive-z endcap the one above (9, 14, 18).

Layer ids follow TrackML: even numbers 2, 4, 6, ... In a barrel they grow with the radius.
In an endcap they grow with z, as in TrackML: in the positive-z endcap layer 2 is the disk
nearest the interaction point, in the negative-z endcap layer 2 is the farthest one
(z = -1500 mm for the pixels) and the highest id is the nearest.

Modules: a barrel layer is split into ``n_phi`` staves times ``n_z`` modules along z, a disk
into rings in r, each ring into ``n_phi`` modules. ``module_id`` counts from 1 within a layer:
``1 + i_z * n_phi + i_phi`` (barrel) or ``1 + sum(n_phi of inner rings) + i_phi`` (disks),
with ``i_phi`` counted from phi = -pi.

All lengths in mm, momenta in GeV, the field in tesla.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from exatrkx.constants import B_FIELD_T


@dataclass(frozen=True)
class Layer:
    """One sensitive surface: a barrel cylinder or an endcap disk.

    Attributes:
        volume_id: TrackML volume (7..18).
        layer_id: TrackML layer (even, from 2).
        barrel: True for a cylinder at radius ``position``, False for a disk at z = ``position``.
        position: radius of a cylinder or z of a disk, mm.
        lo, hi: extent: z range of a cylinder (-half length, +half length) or r range of a disk.
        thickness: material, fraction of a radiation length at normal incidence.
        sigma_u: resolution in r-phi, mm.
        sigma_v: resolution along z (barrel) or r (disk), mm.
        efficiency: probability that a crossing gives a hit.
        n_phi: modules in phi per z-row (barrel) or per ring (disk; one entry a ring).
        n_v: modules along z (barrel); ring edges in r (disk, ``len(n_phi) + 1`` values).
    """

    volume_id: int
    layer_id: int
    barrel: bool
    position: float
    lo: float
    hi: float
    thickness: float
    sigma_u: float
    sigma_v: float
    efficiency: float
    n_phi: tuple[int, ...]
    n_v: tuple[float, ...]

    @property
    def area(self) -> float:
        """Sensitive area, mm^2."""
        if self.barrel:
            return 2.0 * np.pi * self.position * (self.hi - self.lo)
        return np.pi * (self.hi ** 2 - self.lo ** 2)

    @property
    def n_modules(self) -> int:
        if self.barrel:
            return self.n_phi[0] * int(self.n_v[0])
        return int(sum(self.n_phi))


@dataclass(frozen=True)
class SubDetector:
    """Parameters shared by the layers of one sub-detector."""

    name: str
    volumes: tuple[int, int, int]          # (negative endcap, barrel, positive endcap)
    barrel_radii: tuple[float, ...]
    barrel_half_length: float
    barrel_n_phi: tuple[int, ...]
    barrel_n_z: int
    disk_z: tuple[float, ...]
    disk_ring_edges: tuple[float, ...]
    disk_n_phi: tuple[int, ...]
    thickness: float
    sigma_u: float
    sigma_v: float


PIXEL = SubDetector("pixel", (7, 8, 9), (32.0, 72.0, 116.0, 172.0), 490.0, (16, 32, 52, 78), 14,
                    (600.0, 700.0, 820.0, 960.0, 1100.0, 1300.0, 1500.0), (30.0, 100.0, 175.0),
                    (24, 40), 0.018, 0.05, 0.05)
SHORT_STRIP = SubDetector("short strip", (12, 13, 14), (260.0, 360.0, 500.0, 660.0), 1080.0,
                          (40, 56, 78, 102), 21,
                          (1220.0, 1500.0, 1800.0, 2150.0, 2550.0, 2950.0),
                          (230.0, 350.0, 500.0, 700.0), (40, 56, 72), 0.025, 0.08, 0.5)
LONG_STRIP = SubDetector("long strip", (16, 17, 18), (820.0, 1020.0), 1080.0, (40, 56), 21,
                         (1220.0, 1500.0, 1800.0, 2150.0, 2550.0, 2950.0),
                         (720.0, 870.0, 1020.0), (56, 72), 0.03, 0.12, 1.0)
SUBDETECTORS = (PIXEL, SHORT_STRIP, LONG_STRIP)


@dataclass(frozen=True)
class Detector:
    """The list of sensitive layers, with vectorised look-ups.

    Attributes:
        layers: every layer; index ``i`` is the layer's surface index used by the simulation.
        field: solenoid field along +z, tesla.
    """

    layers: tuple[Layer, ...]
    field: float = B_FIELD_T

    @cached_property
    def barrel_index(self) -> np.ndarray:
        """int64 ``[n_cyl]``: surface indices of the cylinders."""
        return np.array([i for i, s in enumerate(self.layers) if s.barrel], dtype=np.int64)

    @cached_property
    def disk_index(self) -> np.ndarray:
        """int64 ``[n_disk]``: surface indices of the disks."""
        return np.array([i for i, s in enumerate(self.layers) if not s.barrel], dtype=np.int64)

    def column(self, name: str) -> np.ndarray:
        """One attribute of every layer as an array ``[n_layers]``."""
        return np.array([getattr(s, name) for s in self.layers])

    @cached_property
    def volume_id(self) -> np.ndarray:
        return self.column("volume_id").astype(np.int64)

    @cached_property
    def layer_id(self) -> np.ndarray:
        return self.column("layer_id").astype(np.int64)

    @cached_property
    def is_barrel(self) -> np.ndarray:
        return self.column("barrel").astype(bool)

    @cached_property
    def position(self) -> np.ndarray:
        return self.column("position").astype(np.float64)

    @cached_property
    def lo(self) -> np.ndarray:
        return self.column("lo").astype(np.float64)

    @cached_property
    def hi(self) -> np.ndarray:
        return self.column("hi").astype(np.float64)

    @cached_property
    def thickness(self) -> np.ndarray:
        return self.column("thickness").astype(np.float64)

    @cached_property
    def sigma_u(self) -> np.ndarray:
        return self.column("sigma_u").astype(np.float64)

    @cached_property
    def sigma_v(self) -> np.ndarray:
        return self.column("sigma_v").astype(np.float64)

    @cached_property
    def efficiency(self) -> np.ndarray:
        return self.column("efficiency").astype(np.float64)

    @cached_property
    def area(self) -> np.ndarray:
        return self.column("area").astype(np.float64)

    def find(self, volume_id: int, layer_id: int) -> int:
        """Surface index of a (volume, layer) pair.

        Raises:
            KeyError: when there is no such layer.
        """
        for i, s in enumerate(self.layers):
            if s.volume_id == volume_id and s.layer_id == layer_id:
                return i
        raise KeyError(f"no layer ({volume_id}, {layer_id})")

    def with_efficiency(self, efficiency: float) -> Detector:
        """The same detector with one hit efficiency for every layer."""
        if not 0.0 <= efficiency <= 1.0:
            raise ValueError(f"efficiency must be in [0, 1], got {efficiency}")
        return Detector(tuple(replace(s, efficiency=efficiency) for s in self.layers), self.field)

    def module_id(self, surface: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        """Module of each point on its surface.

        Args:
            surface: int ``[N]`` surface indices.
            xyz: float ``[N, 3]`` positions, mm (on or near the surface).

        Returns:
            int64 ``[N]`` module ids, from 1 within each layer.
        """
        surface = np.asarray(surface, dtype=np.int64)
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        out = np.zeros(len(surface), dtype=np.int64)
        frac_phi = (np.arctan2(xyz[:, 1], xyz[:, 0]) + np.pi) / (2.0 * np.pi)
        r = np.hypot(xyz[:, 0], xyz[:, 1])
        for s in np.unique(surface):
            sel = surface == s
            lay = self.layers[int(s)]
            i_phi: np.ndarray
            if lay.barrel:
                n_phi, n_z = lay.n_phi[0], int(lay.n_v[0])
                i_phi = np.minimum((frac_phi[sel] * n_phi).astype(np.int64), n_phi - 1)
                fz = (xyz[sel, 2] - lay.lo) / (lay.hi - lay.lo)
                i_z = np.clip((fz * n_z).astype(np.int64), 0, n_z - 1)
                out[sel] = 1 + i_z * n_phi + i_phi
            else:
                edges = np.asarray(lay.n_v)
                rings = np.asarray(lay.n_phi)
                ring = np.clip(np.searchsorted(edges, r[sel], side="right") - 1, 0,
                               len(rings) - 1)
                first = np.concatenate([[0], np.cumsum(rings)[:-1]])
                i_phi = np.minimum((frac_phi[sel] * rings[ring]).astype(np.int64),
                                   rings[ring] - 1)
                out[sel] = 1 + first[ring] + i_phi
        return out


def _layers_of(sub: SubDetector, efficiency: float) -> list[Layer]:
    neg, bar, pos = sub.volumes
    layers = []
    n_disks = len(sub.disk_z)
    ring_lo, ring_hi = sub.disk_ring_edges[0], sub.disk_ring_edges[-1]
    # negative endcap: ids grow with z, i.e. from the outermost disk inwards
    for j, z in enumerate(sorted(sub.disk_z, reverse=True)):
        layers.append(Layer(neg, 2 * (j + 1), False, -z, ring_lo, ring_hi, sub.thickness,
                            sub.sigma_u, sub.sigma_v, efficiency, sub.disk_n_phi,
                            sub.disk_ring_edges))
    for j, r in enumerate(sub.barrel_radii):
        h = sub.barrel_half_length
        layers.append(Layer(bar, 2 * (j + 1), True, r, -h, h, sub.thickness, sub.sigma_u,
                            sub.sigma_v, efficiency, (sub.barrel_n_phi[j],),
                            (float(sub.barrel_n_z),)))
    for j, z in enumerate(sorted(sub.disk_z)):
        layers.append(Layer(pos, 2 * (j + 1), False, z, ring_lo, ring_hi, sub.thickness,
                            sub.sigma_u, sub.sigma_v, efficiency, sub.disk_n_phi,
                            sub.disk_ring_edges))
    assert len(layers) == 2 * n_disks + len(sub.barrel_radii)
    return layers


def generic_detector(efficiency: float = 0.99, field: float = B_FIELD_T) -> Detector:
    """The TrackML-style generic detector (see the module docstring).

    Args:
        efficiency: hit efficiency of every layer.
        field: solenoid field, tesla.
    """
    if not 0.0 <= efficiency <= 1.0:
        raise ValueError(f"efficiency must be in [0, 1], got {efficiency}")
    layers: list[Layer] = []
    for sub in SUBDETECTORS:
        layers.extend(_layers_of(sub, efficiency))
    return Detector(tuple(layers), field)
