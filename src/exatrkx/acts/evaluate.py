"""Scoring the chain's fitted tracks: one definition for every finder.

Per event and finder, the selected tracks (their measurements, mapped back to the event's
hits) are matched to the truth by :func:`exatrkx.physics.metrics.evaluate_tracks`, the same
double-majority definition ``reconstruct --evaluate`` uses (> 50% both ways; ACTS' own
``TrackTruthMatcher`` uses >= 50%): efficiency over reconstructable particles (pT > 1 GeV,
>= 5 hits), displaced ones produced at r > 10 mm, fake and duplicate rates over tracks of
>= 5 hits. Resolutions come from :mod:`exatrkx.physics.resolution` over each matched
reconstructable particle's track. Counters say what was lost on the way (proto-tracks
without a seed, failed fits, tracks removed by the selection), timings what each block cost.

An :class:`EventResult` holds all of it for one event and round-trips through JSON, so a
resumed run scores the events of earlier runs with the same code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from exatrkx.acts.chain import CKF_NAME, FittedTracks
from exatrkx.acts.ledger import EventState
from exatrkx.acts.settings import COMMON_SELECTION
from exatrkx.physics.metrics import EventMetrics, MetricsConfig, evaluate_tracks, summarize
from exatrkx.physics.resolution import fitted_residuals, width68

#: Version of the per-event JSON (a result of another version is redone on resume).
RESULT_VERSION = 1
#: Columns of the particle rows kept per event (those with enough hits to be binned).
PARTICLE_COLUMNS = ["particle_id", "pt", "eta", "radius", "nhits", "reconstructable",
                    "matched", "track"]
#: Keys of a finder's summary that ``chain --json`` promises (ARCHITECTURE.md).
CONTRACT_KEYS = ("track_efficiency", "track_efficiency_displaced", "fake_rate",
                 "duplicate_rate", "finding_ms_per_event", "ms_per_event", "pt_resolution")


@dataclass
class FinderResult:
    """One finder on one event.

    Attributes:
        metrics: counts and particles of :func:`~exatrkx.physics.metrics.evaluate_tracks`.
        residuals: one row per matched particle (see
            :func:`~exatrkx.physics.resolution.fitted_residuals`) plus ``chi2_ndf``.
        counts: what the finder made along the way (``selected`` tracks; the CKF's
            ``seeds``, ``found``, ``resolved``; our finder's ``spacepoints``,
            ``prototracks``, ``seeded``, ``fitted``, ``fit_failures``).
        ms: ``finding`` and ``chain`` (finding, fit and selection), plus the parts.
    """

    metrics: EventMetrics
    residuals: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    ms: dict[str, float] = field(default_factory=dict)


@dataclass
class EventResult:
    """The chain's result on one event (every finder), as written by ``chain --out``."""

    name: str
    source: str
    hits: int
    read_ms: float
    finders: dict[str, FinderResult] = field(default_factory=dict)
    #: measured in this run (False: loaded from an earlier run's file)
    timed: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"version": RESULT_VERSION, "name": self.name, "source": self.source,
                "hits": self.hits, "read_ms": self.read_ms,
                "finders": {k: _finder_json(f) for k, f in self.finders.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventResult:
        """Raises KeyError, TypeError or ValueError on a malformed document."""
        if data.get("version") != RESULT_VERSION:
            raise ValueError(f"result version {data.get('version')!r}, not {RESULT_VERSION}")
        finders = {k: _finder_from_json(data["name"], f) for k, f in data["finders"].items()}
        return cls(str(data["name"]), str(data["source"]), int(data["hits"]),
                   float(data["read_ms"]), finders, timed=False)


def _finder_json(f: FinderResult) -> dict[str, Any]:
    parts = f.metrics.particles
    cols = [c for c in PARTICLE_COLUMNS if c in parts.columns]
    parts = parts.loc[parts["nhits"] >= MetricsConfig().min_hits, cols] if len(parts) else parts
    return {"counts": f.counts, "ms": f.ms, "metrics": f.metrics.counts,
            "trackml_weight": list(f.metrics.trackml_weight),
            "particles": {c: parts[c].tolist() for c in cols} if len(parts) else {},
            "residuals": {c: f.residuals[c].tolist() for c in f.residuals.columns}}


def _finder_from_json(name: str, d: Mapping[str, Any]) -> FinderResult:
    parts = pd.DataFrame(dict(d["particles"]), columns=PARTICLE_COLUMNS) if d["particles"] \
        else pd.DataFrame(columns=PARTICLE_COLUMNS)
    weight = d["trackml_weight"]
    metrics = EventMetrics(name, {k: int(v) for k, v in d["metrics"].items()},
                           (float(weight[0]), float(weight[1])), parts)
    return FinderResult(metrics, pd.DataFrame(dict(d["residuals"])),
                        {k: int(v) for k, v in d["counts"].items()},
                        {k: float(v) for k, v in d["ms"].items()})


def score_event(state: EventState, outputs: Mapping[str, tuple[FittedTracks, dict[str, int]]]
                ) -> EventResult:
    """Every finder's tracks of one finished event, scored (see the module docstring)."""
    event, order = state.event, state.order
    assert event is not None and order is not None and event.particles is not None
    blocks = state.blocks_ms()
    result = EventResult(event.name, str(state.source), event.num_hits, blocks.get("read", 0.0))
    for name, (tracks, counters) in outputs.items():
        metrics = evaluate_tracks(event, [order[m] for m in tracks.measurements])
        residuals = fitted_residuals(event.particles, metrics.particles, tracks.params)
        matched = metrics.particles["track"].to_numpy(np.int64)
        matched = matched[matched >= 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            residuals["chi2_ndf"] = tracks.chi2[matched] / tracks.ndf[matched]
        counts = {"selected": len(tracks.measurements), **counters}
        if name == CKF_NAME:
            ms = {"finding": blocks["ckf_find"],
                  "chain": blocks["ckf_find"] + blocks["ckf_select"]}
        else:
            notes = state.notes.get(name, {})
            counts["spacepoints"] = int(notes.get("spacepoints", 0))
            counts["prototracks"] = int(notes.get("prototracks", 0))
            counts["fit_failures"] = counts["seeded"] - counts["fitted"]
            finding = blocks["spacepoints"] + blocks[f"{name}_find"]
            ms = {"finding": finding,
                  "chain": finding + blocks[f"{name}_fit"] + blocks[f"{name}_select"],
                  "spacepoints": blocks["spacepoints"], "fit": blocks[f"{name}_fit"],
                  **{k: float(v) for k, v in notes.items() if k.endswith("_ms")}}
        result.finders[name] = FinderResult(metrics, residuals, counts, ms)
    return result


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def summarize_finder(results: Sequence[EventResult], finder: str) -> dict[str, Any]:
    """One finder over events: the contract's keys (:data:`CONTRACT_KEYS`) and more.

    Rates count every event; times only the events measured in this run
    (``timed_events``).
    """
    per = [r.finders[finder] for r in results if finder in r.finders]
    physics = summarize([f.metrics for f in per])
    cols = ["pt_rel", "d0", "z0", "reconstructable", "chi2_ndf"]
    res = pd.concat([f.residuals for f in per if len(f.residuals)], ignore_index=True) \
        if any(len(f.residuals) for f in per) else pd.DataFrame(columns=cols)
    recon = res[res["reconstructable"].astype(bool)] if len(res) else res
    timed = [f for r, f in zip(results, per, strict=True) if r.timed]
    counts: dict[str, int] = {}
    for f in per:
        for k, v in f.counts.items():
            counts[k] = counts.get(k, 0) + v
    parts = pd.concat([f.metrics.particles for f in per if len(f.metrics.particles)],
                      ignore_index=True) if any(len(f.metrics.particles) for f in per) else None
    central = math.nan
    if parts is not None:
        sel = parts["reconstructable"].astype(bool).to_numpy() & (
            np.abs(parts["eta"].to_numpy(float)) < (COMMON_SELECTION.abs_eta_max or np.inf))
        if sel.any():
            central = float(parts["matched"].astype(bool).to_numpy()[sel].mean())
    return {
        "events": len(per),
        "track_efficiency": physics["track_efficiency"],
        "track_efficiency_displaced": physics["track_efficiency_displaced"],
        "track_efficiency_abs_eta_lt_3": central,
        "fake_rate": physics["fake_rate"],
        "duplicate_rate": physics["duplicate_rate"],
        "pt_resolution": width68(recon["pt_rel"].to_numpy(float)) if len(recon) else math.nan,
        "d0_resolution_mm": width68(recon["d0"].to_numpy(float)) if len(recon) else math.nan,
        "z0_resolution_mm": width68(recon["z0"].to_numpy(float)) if len(recon) else math.nan,
        "chi2_ndf_median": (float(np.nanmedian(recon["chi2_ndf"].to_numpy(float)))
                            if len(recon) and np.isfinite(recon["chi2_ndf"].to_numpy(float)).any()
                            else math.nan),
        "fit_failures": counts.get("fit_failures") if finder != CKF_NAME else None,
        "finding_ms_per_event": _mean([f.ms["finding"] for f in timed]),
        "ms_per_event": _mean([f.ms["chain"] for f in timed]),
        "timed_events": len(timed),
        "ms_parts": {k: _mean([f.ms.get(k, math.nan) for f in timed])
                     for k in (timed[0].ms if timed else {}) if k not in ("finding", "chain")},
        "counts": counts,
        "reconstructable": physics["counts"].get("reconstructable", 0),
        "displaced": physics["counts"].get("displaced", 0),
        "binned": physics["binned"],
    }
