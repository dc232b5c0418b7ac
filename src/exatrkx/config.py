"""Configuration of the pipeline, in one place.

The values a trained model was made with travel with its weights (``weights/metadata.json``);
:func:`exatrkx.pipeline.load_pipeline` reads them from there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


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
    activation: str = "tanh"


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
    activation: str = "relu"


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
    activation: str = "relu"
    edge_norm: bool = False


@dataclass(frozen=True)
class SelectionConfig:
    """Track selection after labelling (:mod:`exatrkx.stages.select`).

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
    field: float = 2.0


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides which labels an event gets.

    Attributes:
        radius: fixed radius of the neighbour search in embedding space.
        max_neighbours: at most this many neighbours per hit (the nearest ones).
        filter_cut: keep edges whose filter score (sigmoid) is above this.
        gnn_cut: keep edges whose GNN score (sigmoid) is above this for labelling.
        label_method: ``"best_outer"``, ``"best_inner"`` (every hit keeps its best edge
            outwards / inwards, then connected components) or ``"components"``; see
            :mod:`exatrkx.stages.label`.
        selection: which labelled tracks are reported (minimum fitted pT).
    """

    embed: EmbedConfig = field(default_factory=EmbedConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    gnn: GNNConfig = field(default_factory=GNNConfig)
    radius: float = 0.07
    max_neighbours: int = 64
    filter_cut: float = 0.2
    gnn_cut: float = 0.5
    label_method: str = "best_outer"
    selection: SelectionConfig = field(default_factory=SelectionConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        sub = {"embed": EmbedConfig, "filter": FilterConfig, "gnn": GNNConfig,
               "selection": SelectionConfig}
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue
            kwargs[key] = sub[key](**value) if key in sub else value
        return cls(**kwargs)
