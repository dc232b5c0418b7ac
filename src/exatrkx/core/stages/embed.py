"""Stage 1: embed each hit into a space where hits of one track lie close together."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from exatrkx.config import EmbedConfig
from exatrkx.core.batch import Layout
from exatrkx.core.nets import HIT_DIM, encode_hits, mlp


class EmbeddingNet(nn.Module):
    """MLP on the encoded hit (:func:`~exatrkx.core.nets.encode_hits`: r, cos phi, sin phi, z)
    ``-> hidden x layers -> out_dim``, optionally L2-normalised.

    With ``config.normalize`` (the default) every output lies on the unit sphere, so the
    build radius is a chord length in ``[0, 2]``; training uses a hinge loss on pairwise
    distances of these normalised coordinates.
    """

    def __init__(self, config: EmbedConfig | None = None) -> None:
        super().__init__()
        cfg = config or EmbedConfig()
        self.normalize = bool(cfg.normalize)
        self.net = mlp(HIT_DIM, cfg.hidden, cfg.out_dim, cfg.layers, cfg.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` f32 ``[N, 3]`` -> f32 ``[N, out_dim]``."""
        out = self.net(encode_hits(x))
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=1)
        return out


def embed_events(model: nn.Module, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Embed the hits of several events in one pass (hits joined in blocks,
    :mod:`exatrkx.core.batch`): f32 ``[N_e, 3]`` each -> f32 ``[N_e, D]`` each."""
    with torch.inference_mode():
        layout = Layout.of([int(f.shape[0]) for f in features])
        joined = layout.join_hits([f.to(torch.float32) for f in features])
        return layout.split_hits(model(joined))


def embed(model: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Embed hits: f32 ``[N, 3]`` -> f32 ``[N, D]`` on the features' device (an event alone
    is a batch of one: the same result as in any batch)."""
    return embed_events(model, [features])[0]
