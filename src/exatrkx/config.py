"""Configuration of the pipeline, in one place.

The values a trained model was made with travel with its weights (``metadata.json``);
:func:`exatrkx.core.models.load_models` reads them from there. Every config validates its
values on construction and :meth:`PipelineConfig.from_dict` names an unknown key, so a
typo in a weights folder is an error, not a silently ignored setting.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

from exatrkx.constants import B_FIELD_T
from exatrkx.errors import InputError

Activation = Literal["tanh", "relu"]
LabelMethod = Literal["best_outer", "best_inner", "best_both", "components"]
FrnnBackend = Literal["auto", "kdtree", "torch"]
EmbedKind = Literal["mlp", "layers"]
BuildMethod = Literal["radius", "layer_pairs"]

#: The label methods (see :mod:`exatrkx.core.stages.label`).
LABEL_METHODS: tuple[LabelMethod, ...] = get_args(LabelMethod)
ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)
FRNN_BACKENDS: tuple[FrnnBackend, ...] = get_args(FrnnBackend)
EMBED_KINDS: tuple[EmbedKind, ...] = get_args(EmbedKind)
BUILD_METHODS: tuple[BuildMethod, ...] = get_args(BuildMethod)
#: Width of the embedding of ``EmbedConfig(kind="layers")``: the 3 features and the layer.
LAYER_EMBED_DIM = 4


def _choice(what: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")


def _positive_int(what: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{what} must be a positive integer, got {value!r}")


def _number(what: str, value: object, low: float = -math.inf, high: float = math.inf) -> None:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not low <= float(value) <= high):
        raise InputError(f"{what} must be a number in [{low:g}, {high:g}], got {value!r}")


@dataclass(frozen=True)
class EmbedConfig:
    """Embedding MLP: 3 hit features -> ``out_dim`` coordinates.

    Attributes:
        layers: number of hidden Linear+activation blocks.
        normalize: L2-normalise the output (points on the unit sphere, so the build
            radius is between 0 and 2 whatever the training did to the scale).
        activation: ``"tanh"`` or ``"relu"``.
        kind: ``"mlp"`` (metric learning, the net above) or ``"layers"``: no net, each hit
            gets the detector layer whose box (:class:`LayerMapConfig`) holds it; the
            embedding is then ``[features, layer]`` (``out_dim`` 4, layer -1 = none), the
            input of the ``layer_pairs`` build.
    """

    in_dim: int = 3
    hidden: int = 64
    layers: int = 3
    out_dim: int = 8
    normalize: bool = True
    activation: Activation = "tanh"
    kind: EmbedKind = "mlp"

    def __post_init__(self) -> None:
        for name in ("in_dim", "hidden", "layers", "out_dim"):
            _positive_int(f"embed.{name}", getattr(self, name))
        _choice("embed.activation", self.activation, ACTIVATIONS)
        _choice("embed.kind", self.kind, EMBED_KINDS)
        if self.kind == "layers" and self.out_dim != LAYER_EMBED_DIM:
            raise InputError(f"embed.out_dim must be {LAYER_EMBED_DIM} for kind 'layers', got "
                             f"{self.out_dim}")


@dataclass(frozen=True)
class FilterConfig:
    """Edge filter MLP on the concatenated endpoint features (``2 * in_dim`` inputs).

    Attributes:
        layers: number of hidden Linear(+LayerNorm)+activation blocks.
        norm: LayerNorm in each hidden block (off by default: it doubles the CPU cost).
        activation: ``"tanh"`` or ``"relu"``.
    """

    in_dim: int = 3
    hidden: int = 32
    layers: int = 2
    norm: bool = False
    activation: Activation = "relu"

    def __post_init__(self) -> None:
        for name in ("in_dim", "hidden", "layers"):
            _positive_int(f"filter.{name}", getattr(self, name))
        _choice("filter.activation", self.activation, ACTIVATIONS)


@dataclass(frozen=True)
class GNNConfig:
    """Interaction-network edge classifier.

    Attributes:
        hidden: width of the node and edge latents and of every MLP.
        steps: message-passing iterations (the iteration's weights are shared). Four: on
            the no-pileup HNL events eight gave the same physics at 1.7 times the GNN's time,
            three and two lost 0.5-1% of efficiency (README, "Physics performance").
        mlp_layers: hidden blocks in each MLP (encoders, edge/node nets, output head).
        activation: ``"relu"`` or ``"tanh"``.
        edge_norm: LayerNorm in the edge-level MLPs too (node-level ones always have it);
            off by default because it is the largest CPU cost of the GNN.
    """

    in_dim: int = 3
    hidden: int = 32
    steps: int = 4
    mlp_layers: int = 2
    activation: Activation = "relu"
    edge_norm: bool = False

    def __post_init__(self) -> None:
        for name in ("in_dim", "hidden", "steps", "mlp_layers"):
            _positive_int(f"gnn.{name}", getattr(self, name))
        _choice("gnn.activation", self.activation, ACTIVATIONS)


@dataclass(frozen=True)
class SelectionConfig:
    """Track selection after labelling (:mod:`exatrkx.core.stages.select`).

    Attributes:
        min_pt: tracks whose fitted transverse momentum (GeV) is below this lose their
            label; 0 keeps every track. 0.4 GeV: such a track's transverse diameter is
            1.3 m, so it leaves the tracker before it can curl back.
        min_sagitta: mm; a track is judged only if a track at ``min_pt`` would curve this
            much over the track's transverse extent (short arcs, such as forward tracks
            seen only by the pixel disks, are kept whatever their fit says).
        field: solenoid field in tesla.
    """

    min_pt: float = 0.4
    min_sagitta: float = 1.0
    field: float = B_FIELD_T

    def __post_init__(self) -> None:
        _number("selection.min_pt", self.min_pt, 0.0)
        _number("selection.min_sagitta", self.min_sagitta, 0.0)
        _number("selection.field", self.field, 1e-6)


#: Fields of one row of :attr:`LayerMapConfig.pairs`.
PAIR_FIELDS = ("inner", "outer", "dphi_lo", "dphi_hi", "du_lo", "du_hi")


@dataclass(frozen=True)
class LayerMapConfig:
    """The detector's layers and which layer pairs tracks connect, learnt from simulation
    (:func:`exatrkx.train.learn_layer_map`; see :mod:`exatrkx.core.stages.layerpairs`).

    Attributes:
        boxes: per layer ``(r_lo, r_hi, z_lo, z_hi)`` in mm: a hit inside belongs to the
            layer (the first box that holds it). A layer is a barrel layer when its box is
            longer in z than in r (its hits lie at one radius), else a disk.
        pairs: per connected pair ``(inner, outer, dphi_lo, dphi_hi, du_lo, du_hi)``: layer
            indices (inner = nearer the origin), the window of the azimuth difference
            (rad) and of ``du``, the outer hit's position along its layer (z on a barrel
            layer, r on a disk, mm) less the position a straight line from the origin
            through the inner hit would have there.
    """

    boxes: tuple[tuple[float, float, float, float], ...] = ()
    pairs: tuple[tuple[int, int, float, float, float, float], ...] = ()

    def __post_init__(self) -> None:
        try:
            boxes = tuple(tuple(float(v) for v in b) for b in self.boxes)
            pairs = tuple((int(p[0]), int(p[1]), *(float(v) for v in p[2:]))
                          for p in self.pairs)
        except (TypeError, ValueError, IndexError):
            raise InputError("layers: boxes and pairs must be lists of numbers") from None
        if any(len(b) != 4 or not (b[0] <= b[1] and b[2] <= b[3]) for b in boxes):
            raise InputError("layers.boxes: each must be [r_lo, r_hi, z_lo, z_hi] with lo <= hi")
        for p in pairs:
            if len(p) != len(PAIR_FIELDS):
                raise InputError(f"layers.pairs: each must be [{', '.join(PAIR_FIELDS)}]")
            if not (0 <= p[0] < len(boxes) and 0 <= p[1] < len(boxes)):
                raise InputError(f"layers.pairs: layer index out of range in {list(p)}")
            if not (p[2] <= p[3] and p[4] <= p[5]):
                raise InputError(f"layers.pairs: a window with lo > hi in {list(p)}")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "pairs", pairs)


#: Sub-configs of :class:`PipelineConfig` by key.
_SUB_CONFIGS: dict[str, type] = {"embed": EmbedConfig, "filter": FilterConfig,
                                 "gnn": GNNConfig, "selection": SelectionConfig,
                                 "layers": LayerMapConfig}


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides which labels an event gets.

    Attributes:
        radius: fixed radius of the neighbour search in embedding space.
        max_neighbours: at most this many neighbours per hit (the nearest ones).
        filter_cut: keep edges whose filter score (sigmoid) is above this.
        gnn_cut: keep edges whose GNN score (sigmoid) is above this for labelling.
        label_method: ``"best_outer"``, ``"best_inner"`` (every hit keeps its best edge
            outwards / inwards, then connected components), ``"best_both"`` (both) or
            ``"components"``; see :mod:`exatrkx.core.stages.label`.
        selection: which labelled tracks are reported (minimum fitted pT).
        build_method: ``"radius"`` (fixed-radius neighbours in the embedding space) or
            ``"layer_pairs"`` (hits of connected layers within learnt windows; needs
            ``embed.kind == "layers"`` and :attr:`layers`).
        layers: the layer map of the ``layer_pairs`` build.
    """

    embed: EmbedConfig = field(default_factory=EmbedConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    gnn: GNNConfig = field(default_factory=GNNConfig)
    radius: float = 0.07
    max_neighbours: int = 64
    filter_cut: float = 0.2
    gnn_cut: float = 0.5
    label_method: LabelMethod = "best_outer"
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    build_method: BuildMethod = "radius"
    layers: LayerMapConfig = field(default_factory=LayerMapConfig)

    def __post_init__(self) -> None:
        for key, cls in _SUB_CONFIGS.items():
            if not isinstance(getattr(self, key), cls):
                raise InputError(f"{key} must be a {cls.__name__}, got "
                                 f"{type(getattr(self, key)).__name__}")
        _number("radius", self.radius, 0.0)
        _positive_int("max_neighbours", self.max_neighbours)
        _number("filter_cut", self.filter_cut, -1.0, 1.0)
        _number("gnn_cut", self.gnn_cut, 0.0, 1.0)
        _choice("label_method", self.label_method, LABEL_METHODS)
        _choice("build_method", self.build_method, BUILD_METHODS)
        if self.build_method == "layer_pairs" and self.embed.kind != "layers":
            raise InputError("build_method 'layer_pairs' needs embed.kind 'layers'")
        if self.filter.in_dim != self.embed.in_dim or self.gnn.in_dim != self.embed.in_dim:
            raise InputError("embed, filter and gnn must take the same number of hit "
                             "features (in_dim)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        """The config stored by :meth:`to_dict`.

        Raises:
            InputError: an unknown key (named), a sub-config that is not a mapping, or a
                value out of range.
        """
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise InputError(f"unknown pipeline setting {key!r} (known: "
                                 f"{', '.join(sorted(known))})")
            sub = _SUB_CONFIGS.get(key)
            if sub is None:
                kwargs[key] = value
                continue
            if not isinstance(value, dict):
                raise InputError(f"pipeline setting {key!r} must be a mapping")
            sub_known = {f.name for f in fields(sub)}
            unknown = sorted(set(value) - sub_known)
            if unknown:
                raise InputError(f"unknown pipeline setting {key}.{unknown[0]} (known: "
                                 f"{', '.join(sorted(sub_known))})")
            kwargs[key] = sub(**value)
        return cls(**kwargs)
