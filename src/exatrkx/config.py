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

#: The label methods (see :mod:`exatrkx.core.stages.label`).
LABEL_METHODS: tuple[LabelMethod, ...] = get_args(LabelMethod)
ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)
FRNN_BACKENDS: tuple[FrnnBackend, ...] = get_args(FrnnBackend)


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
    """

    in_dim: int = 3
    hidden: int = 64
    layers: int = 3
    out_dim: int = 8
    normalize: bool = True
    activation: Activation = "tanh"

    def __post_init__(self) -> None:
        for name in ("in_dim", "hidden", "layers", "out_dim"):
            _positive_int(f"embed.{name}", getattr(self, name))
        _choice("embed.activation", self.activation, ACTIVATIONS)


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
        steps: message-passing iterations (the iteration's weights are shared).
        mlp_layers: hidden blocks in each MLP (encoders, edge/node nets, output head).
        activation: ``"relu"`` or ``"tanh"``.
        edge_norm: LayerNorm in the edge-level MLPs too (node-level ones always have it);
            off by default because it is the largest CPU cost of the GNN.
    """

    in_dim: int = 3
    hidden: int = 32
    steps: int = 8
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


#: Sub-configs of :class:`PipelineConfig` by key.
_SUB_CONFIGS: dict[str, type] = {"embed": EmbedConfig, "filter": FilterConfig,
                                 "gnn": GNNConfig, "selection": SelectionConfig}


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
