"""The :class:`Event` type: the pipeline's features plus, when known, hits and truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from exatrkx.core.features import features_from_xyz
from exatrkx.errors import InputError

HIT_COLUMNS = ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"]
PARTICLE_COLUMNS = ["particle_id", "particle_type", "vx", "vy", "vz", "px", "py", "pz", "q",
                    "nhits"]
TRUTH_COLUMNS = ["hit_id", "particle_id", "tx", "ty", "tz", "tpx", "tpy", "tpz", "weight"]
SPACEPOINT_COLUMNS = ["measurement_id", "x", "y", "z"]


@dataclass
class Event:
    """One event: the pipeline's features and, when known, the hits and their truth.

    Attributes:
        name: event name, e.g. ``event000000001`` or ``evt_7``.
        features: float32 ``[N, 3]``: r/1000, phi/pi, z/1000 (r, z in mm).
        hit_id: int64 ``[N]``, the id of each row of ``features``.
        hits: TrackML hits table (``HIT_COLUMNS``), rows aligned with ``features``.
        particles: TrackML particles table (``PARTICLE_COLUMNS``).
        truth: TrackML truth table (``TRUTH_COLUMNS``), rows aligned with ``features``.
    """

    name: str
    features: np.ndarray
    hit_id: np.ndarray
    hits: pd.DataFrame | None = None
    particles: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None

    @property
    def num_hits(self) -> int:
        """Number of hits (rows of ``features``)."""
        return int(self.features.shape[0])

    @property
    def has_truth(self) -> bool:
        """True when both the truth and the particles tables are known."""
        return self.truth is not None and self.particles is not None

    @property
    def particle_id(self) -> np.ndarray | None:
        """int64 ``[N]`` particle of each hit (0 = noise), or None without truth."""
        if self.truth is None:
            return None
        return self.truth["particle_id"].to_numpy(np.int64)

    @classmethod
    def from_tables(cls, name: str, hits: pd.DataFrame, particles: pd.DataFrame | None = None,
                    truth: pd.DataFrame | None = None) -> Event:
        """Make an event from TrackML tables; truth rows are aligned to the hits.

        Raises:
            InputError: a required column is missing, hit ids repeat, a hit has no truth
                row, or a coordinate is not finite.
        """
        _require_columns(hits, ["hit_id", "x", "y", "z"], "hits")
        hits = hits.reset_index(drop=True)
        dup = hits["hit_id"].duplicated()
        if dup.any():
            raise InputError(f"hits: hit_id {hits['hit_id'][dup].iloc[0]} appears twice")
        if truth is not None:
            _require_columns(truth, ["hit_id", "particle_id"], "truth")
            dup = truth["hit_id"].duplicated()
            if dup.any():
                raise InputError(f"truth: hit_id {truth['hit_id'][dup].iloc[0]} appears twice")
            missing = ~hits["hit_id"].isin(truth["hit_id"])
            if missing.any():
                raise InputError(f"truth has no row for hit_id {hits['hit_id'][missing].iloc[0]}")
            order = [c for c in TRUTH_COLUMNS if c in truth.columns]
            order += [c for c in truth.columns if c not in order]
            truth = (truth.set_index("hit_id").reindex(hits["hit_id"]).reset_index()
                     .astype({"particle_id": np.int64})[order])
        features = features_from_xyz(hits[["x", "y", "z"]].to_numpy(np.float64))
        bad = ~np.isfinite(features).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"hits: hit_id {hits['hit_id'].iloc[row]} has a non-finite or "
                             "out-of-range coordinate")
        return cls(name=name, features=features, hit_id=hits["hit_id"].to_numpy(np.int64),
                   hits=hits, particles=particles, truth=truth)


def _require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {', '.join(missing)}")
