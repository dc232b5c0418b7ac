"""Event displays: x-y and r-z views of an event's hits, written as PNG.

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg canvas, so
no pyplot state, GUI backend or display is involved.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from exatrkx.core.features import xyz_from_features
from exatrkx.errors import InputError
from exatrkx.io import Event
from exatrkx.sim.geometry import layer_table
from exatrkx.util.files import atomic_write

_GREY = (0.55, 0.55, 0.55, 0.6)
_SINGLE = (0.12, 0.38, 0.70, 0.85)
_GUIDE = {"color": "0.55", "linewidth": 0.5, "linestyle": (0, (4, 3)), "alpha": 0.45}
_MAX_LINE_GROUPS = 150  # more tracks than this: lines would hide the hits
_GUIDE_TOLERANCE_MM = 10.0
_GUIDE_MIN_FRACTION = 0.6


def plot_event(event: Event, out_png: str | Path, *, guides: bool | None = None) -> Path:
    """Draw an event's hits in x-y and r-z, coloured by particle when truth exists.

    Args:
        event: the event; its truth (when present) colours hits by particle, noise grey.
        out_png: the PNG file to write (parent folders are created).
        guides: faint lines at the layers of the generic detector: True, False, or None
            to draw them only when most hits lie on those layers.

    Returns:
        The path written.

    Raises:
        InputError: the file cannot be written.
    """
    pid = event.particle_id
    n = event.num_hits
    if pid is None:
        title = f"{event.name}: {n:,} hits (no truth)"
        return _render(event, None, 0, title, None, out_png, guides)
    n_noise = int(np.count_nonzero(pid == 0))
    n_particles = len(np.unique(pid[pid != 0]))
    title = f"{event.name}: {n:,} hits, {n_particles:,} particles, {n_noise:,} noise hits"
    legend = (f"noise hits ({n_noise:,})", "hits of one particle (one colour each)")
    return _render(event, pid, 0, title, legend, out_png, guides)


def plot_tracks(event: Event, labels: np.ndarray, out_png: str | Path, *,
                guides: bool | None = None) -> Path:
    """Draw an event's hits coloured by reconstructed track label (-1 = unassigned, grey).

    Args:
        event: the event.
        labels: int ``[N]``, the track label of each hit; -1 for hits on no track.
        out_png: the PNG file to write (parent folders are created).
        guides: faint lines at the layers of the generic detector: True, False, or None
            to draw them only when most hits lie on those layers.

    Returns:
        The path written.

    Raises:
        ValueError: ``labels`` does not have one integer per hit.
        InputError: the file cannot be written.
    """
    labels = np.asarray(labels)
    if labels.shape != (event.num_hits,):
        raise ValueError(f"{event.name}: labels of shape {labels.shape} for "
                         f"{event.num_hits} hits")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{event.name}: labels must be integers, got {labels.dtype}")
    labels = labels.astype(np.int64, copy=False)
    unassigned = int(np.count_nonzero(labels < 0))
    n_tracks = len(np.unique(labels[labels >= 0]))
    title = (f"{event.name}: {event.num_hits:,} hits, {n_tracks:,} tracks, "
             f"{unassigned:,} unassigned")
    legend = (f"unassigned hits ({unassigned:,})", "hits of one track (one colour each)")
    return _render(event, np.where(labels < 0, -1, labels), -1, title, legend, out_png, guides)


# --------------------------------------------------------------------------- internals

def _hit_xyz(event: Event) -> np.ndarray:
    """Positions in mm: the hits table when there is one, else from the features."""
    hits = event.hits
    if hits is not None and {"x", "y", "z"} <= set(hits.columns) and len(hits) == event.num_hits:
        return hits[["x", "y", "z"]].to_numpy(np.float64)
    return xyz_from_features(event.features)


def _palette(n: int) -> np.ndarray:
    """``n`` RGBA colours, dark enough for a white background, neighbours well apart.

    Up to ten groups get matplotlib's "tab10" colours (grey left out, as it means noise);
    more get golden-angle hue steps with alternating lightness.
    """
    tab10 = colormaps["tab10"].colors  # type: ignore[attr-defined]
    if n <= 9:
        colours = np.array([c for i, c in enumerate(tab10) if i != 7][:n], dtype=float)
        return np.column_stack([colours.reshape(-1, 3), np.full(n, 0.95)])
    colours = np.empty((n, 4))
    for i in range(n):
        hue = (i * 0.618033988749895) % 1.0
        light = (0.42, 0.30, 0.52)[i % 3]
        colours[i, :3] = colorsys.hls_to_rgb(hue, light, 0.80)
    colours[:, 3] = 0.95
    return colours


def _marker_size(n: int) -> float:
    """Scatter marker area (points^2): large for a few hits, small for many."""
    return float(np.clip(250.0 / np.sqrt(max(n, 1)), 0.5, 16.0))


def _limits(lo: float, hi: float, minimum_span: float = 20.0) -> tuple[float, float]:
    """Padded axis limits that never collapse to a point."""
    span = max(hi - lo, minimum_span)
    mid = 0.5 * (lo + hi)
    return mid - 0.53 * span, mid + 0.53 * span


def _track_pairs(order_key: np.ndarray, groups: np.ndarray,
                 background: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs joining consecutive hits of each group, ordered along ``order_key``."""
    idx = np.flatnonzero(groups != background)
    idx = idx[np.lexsort((order_key[idx], groups[idx]))]
    same = groups[idx[1:]] == groups[idx[:-1]]
    return idx[:-1][same], idx[1:][same]


def _on_layers(r: np.ndarray, z: np.ndarray) -> bool:
    """True when most hits lie on the generic detector's layers (so guides fit the event)."""
    if r.size == 0:
        return False
    tol = _GUIDE_TOLERANCE_MM
    near = np.zeros(r.shape, dtype=bool)
    barrels, disks = _layers()
    for radius, half in barrels:
        near |= (np.abs(r - radius) < tol) & (np.abs(z) <= half + tol)
    for disk_z, r0, r1 in disks:
        near |= (np.abs(np.abs(z) - disk_z) < tol) & (r >= r0 - tol) & (r <= r1 + tol)
    return float(near.mean()) >= _GUIDE_MIN_FRACTION


def _layers() -> tuple[list[tuple[float, float]], list[tuple[float, float, float]]]:
    """The generic detector's barrel layers (radius, half length) and disks (|z|, r_min,
    r_max), mm, from ACTS' geometry."""
    table = layer_table()
    barrel = table[table["barrel"]]
    disk = table[~table["barrel"]]
    barrels = sorted({(round(float(r), 1), round(float(h), 1))
                      for r, h in zip(barrel["position"], barrel["z_max"], strict=True)})
    disks = sorted({(round(abs(float(z)), 1), round(float(a), 1), round(float(b), 1))
                    for z, a, b in zip(disk["position"], disk["r_min"], disk["r_max"],
                                       strict=True)})
    return barrels, disks


def _draw_guides(ax_xy: Axes, ax_rz: Axes) -> None:
    barrels, disks = _layers()
    for radius, _ in barrels:
        ax_xy.add_patch(Circle((0.0, 0.0), radius, fill=False, zorder=0, **_GUIDE))
    barrel = [((-half, r), (half, r)) for r, half in barrels]
    disk_lines = [((s * z, r0), (s * z, r1)) for z, r0, r1 in disks for s in (-1.0, 1.0)]
    ax_rz.add_collection(LineCollection(barrel + disk_lines, zorder=0, **_GUIDE))


def _draw_track_lines(ax_xy: Axes, ax_rz: Axes, xyz: np.ndarray, r: np.ndarray,
                      groups: np.ndarray, background: int, colours: np.ndarray) -> None:
    """Thin lines joining each group's hits in order of distance from the origin."""
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    a, b = _track_pairs(np.hypot(r, z), groups, background)
    line_colours = colours[a].copy()
    line_colours[:, 3] = 0.45
    for ax, u, v in ((ax_xy, x, y), (ax_rz, z, r)):
        seg = np.stack([np.stack([u[a], v[a]], 1), np.stack([u[b], v[b]], 1)], 1)
        ax.add_collection(LineCollection(seg, colors=line_colours, linewidths=0.55, zorder=1))


def _add_legend(fig: Figure, labels: Sequence[str], has_background: bool, has_groups: bool,
                lines: bool) -> None:
    handles = []
    if has_background:
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=5, color=_GREY,
                              markeredgewidth=0, label=labels[0]))
    if has_groups:
        handles.append(Line2D([], [], linestyle="-" if lines else "", linewidth=0.8,
                              marker="o", markersize=5, color=_palette(1)[0],
                              markeredgewidth=0, label=labels[1]))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles),
                   fontsize=9, frameon=False)


def _render(event: Event, groups: np.ndarray | None, background: int, title: str,
            legend: Sequence[str] | None, out_png: str | Path, guides: bool | None) -> Path:
    """Draw the two views; ``groups`` colours hits (``background`` = grey), None = one colour."""
    xyz = _hit_xyz(event)
    n = len(xyz)
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    r = np.hypot(x, y)

    fig = Figure(figsize=(13.0, 6.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax_xy, ax_rz = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.35]})

    sizes = np.full(n, _marker_size(n))
    lines = False
    if groups is None:
        colours = np.tile(_SINGLE, (n, 1))
        order = np.arange(n)
    else:
        ids, inverse = np.unique(groups, return_inverse=True)
        table = _palette(len(ids))
        table[ids == background] = _GREY
        colours = table[inverse]
        is_background = groups == background
        sizes[is_background] *= 0.7
        order = np.argsort(~is_background, kind="stable")  # background underneath
        lines = n > 1 and np.count_nonzero(ids != background) <= _MAX_LINE_GROUPS
        if lines:
            _draw_track_lines(ax_xy, ax_rz, xyz, r, groups, background, colours)
    ax_xy.scatter(x[order], y[order], s=sizes[order], c=colours[order], linewidths=0, zorder=2)
    ax_rz.scatter(z[order], r[order], s=sizes[order], c=colours[order], linewidths=0, zorder=2)

    r_max = float(r.max()) if n else 100.0
    z_lo, z_hi = (float(z.min()), float(z.max())) if n else (-100.0, 100.0)
    ax_xy.set_xlim(_limits(-r_max, r_max))
    ax_xy.set_ylim(_limits(-r_max, r_max))
    ax_xy.set_aspect("equal")
    ax_rz.set_xlim(_limits(z_lo, z_hi))
    ax_rz.set_ylim(0.0, _limits(0.0, r_max)[1])
    if guides or (guides is None and _on_layers(r, z)):
        _draw_guides(ax_xy, ax_rz)

    for ax, (h, v), view in ((ax_xy, "xy", "transverse view (x-y)"),
                             (ax_rz, "zr", "longitudinal view (r-z)")):
        ax.set_xlabel(f"{h} [mm]")
        ax.set_ylabel(f"{v} [mm]")
        ax.set_title(view, fontsize=10)
        ax.grid(True, linewidth=0.3, alpha=0.4)
        ax.tick_params(labelsize=9)
    if legend is not None and groups is not None:
        _add_legend(fig, legend, bool(np.any(groups == background)),
                    bool(np.any(groups != background)), lines)
    fig.suptitle(title, fontsize=12)
    return _save(fig, Path(out_png))


def _save(fig: Figure, out: Path) -> Path:
    """Write the PNG atomically (no partial PNG is ever left)."""
    try:
        atomic_write(out, lambda fh: fig.savefig(fh, format="png"), binary=True, sync=False)
    except OSError as exc:
        raise InputError(f"cannot write PNG ({exc.strerror or exc.__class__.__name__})",
                         out) from None
    return out
