"""Configuration of the pipeline, in one place.

The values a trained model was made with travel with its weights (``weights/metadata.json``);
:func:`exatrkx.pipeline.load_pipeline` reads them from there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class EmbedConfig:
    """Embedding MLP: 3 hit features -> ``out_dim`` coordinates."""

    in_dim: int = 3
    hidden: int = 64
    layers: int = 3
    out_dim: int = 8


@dataclass(frozen=True)
class FilterConfig:
    """Edge filter MLP on the concatenated endpoint features."""

    in_dim: int = 3
    hidden: int = 64
    layers: int = 3


@dataclass(frozen=True)
class GNNConfig:
    """Interaction-network edge classifier."""

    in_dim: int = 3
    hidden: int = 32
    steps: int = 8
    mlp_layers: int = 2


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides which labels an event gets.

    Attributes:
        radius: fixed radius of the neighbour search in embedding space.
        max_neighbours: at most this many neighbours per hit (the nearest ones).
        filter_cut: keep edges whose filter score (sigmoid) is above this.
        gnn_cut: keep edges whose GNN score (sigmoid) is above this for labelling.
    """

    embed: EmbedConfig = field(default_factory=EmbedConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    gnn: GNNConfig = field(default_factory=GNNConfig)
    radius: float = 0.1
    max_neighbours: int = 64
    filter_cut: float = 0.2
    gnn_cut: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        sub = {"embed": EmbedConfig, "filter": FilterConfig, "gnn": GNNConfig}
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue
            kwargs[key] = sub[key](**value) if key in sub else value
        return cls(**kwargs)
