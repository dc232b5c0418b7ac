"""The service contract, in one place: stages, service options, models and their tensors.

Everything that talks about the service reads this module: the in-process pipeline (stage
order), the client (which stages an option sends where, tensor dtypes, buffer sizes), the
Triton repository writer (model configs, ensemble wiring), the served models' input checks,
the network model and the study's report. Nothing else spells an option number, a model name
or a tensor name.

Service options (the study's axis):

==  ====================  ==========================================  ===================
S   name                  what runs on the server                     requests per event
==  ====================  ==========================================  ===================
0   in process            nothing                                     0
1   nets remote           the nets: embed, filter, gnn                3
2   build+label remote    the Python stages: build, label             2
3   every stage remote    every stage, each its own model             5
4   ensemble              the ``exatrkx`` ensemble of the five        1
5   whole-pipeline model  ``exatrkx_pipeline``, one backend process   1
==  ====================  ==========================================  ===================

Tensors (``N`` hits, ``E`` edges, ``D`` embedding width):

===========  =====  =========  =============================================
name         dtype  shape      meaning
===========  =====  =========  =============================================
FEATURES     FP32   [N, 3]     r/1000, phi/pi, z/1000 (r, z in mm)
EMBEDDING    FP32   [N, D]     embedded hits
EDGES        INT64  [2, E]     candidate edges of the build stage
EDGES_KEPT   INT64  [2, E']    edges the filter kept
SCORES       FP32   [E']       GNN edge scores in [0, 1]
LABELS       INT64  [N]        track of each hit, -1 = none
OUTPUT       FP32   [N, 3]     what the identity floor model returns
SIZES        INT64  [3]        D, E, E' of the event (the touch floors' sizes)
===========  =====  =========  =============================================

On the wire every tensor carries one event and a leading *event dimension* of 1 (Triton's
batch dimension: ``FEATURES`` is sent as ``[1, N, 3]``, ``LABELS`` comes back as ``[1, N]``;
:func:`on_wire` / :func:`off_wire`). Every served model declares it (``max_batch_size`` > 0),
so Triton's dynamic batcher can hand a model several events' requests in one execution,
which the model runs as one disjoint graph (:mod:`exatrkx.core.batch`); whether a server
batches is its own setting and never changes what a client sends.

Floors (Triton's own cost, measured beside the options): ``identity`` returns its input and
``identity_ensemble5`` chains five of it (no work, the input never read); ``touch`` and the
five-step ``touch_ensemble5`` read every input element and write outputs of the real stages'
sizes (``SIZES`` gives an event's embedding width and edge counts), so they cost what moving
the real data costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np

# ---------------------------------------------------------------------------- stages

Stage = Literal["embed", "build", "filter", "gnn", "label"]
#: The pipeline's stages, in order.
STAGES: tuple[Stage, ...] = ("embed", "build", "filter", "gnn", "label")
#: Stages that are nets (they have weights).
NET_STAGES: tuple[Stage, ...] = ("embed", "filter", "gnn")

# ---------------------------------------------------------------------------- tensors

FEATURES = "FEATURES"
EMBEDDING = "EMBEDDING"
EDGES = "EDGES"
EDGES_KEPT = "EDGES_KEPT"
SCORES = "SCORES"
LABELS = "LABELS"
OUTPUT = "OUTPUT"
SIZES = "SIZES"

TritonType = Literal["FP32", "INT64"]
#: Embedding width placeholder in a shape (the width comes from the weights).
EMBED_DIM = -2
#: Any size in a shape.
ANY = -1


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the service.

    Attributes:
        name: Triton tensor name.
        dtype: Triton data type.
        shape: dims; :data:`ANY` is any size, :data:`EMBED_DIM` the embedding width.
        per_hit: upper bound of elements per hit of the event: a number, or ``"k"`` (at
            most ``max_neighbours`` edges per hit: ``2k`` for edge lists, ``k`` for scores)
            or ``"D"`` (the embedding width).
    """

    name: str
    dtype: TritonType
    shape: tuple[int, ...]
    per_hit: int | Literal["k", "2k", "D"]

    @property
    def numpy_dtype(self) -> type[np.generic]:
        return np.float32 if self.dtype == "FP32" else np.int64

    @property
    def itemsize(self) -> int:
        return 4 if self.dtype == "FP32" else 8

    def dims(self, embed_dim: int) -> list[int]:
        """The shape with the embedding width filled in (``-1`` stays any size)."""
        return [embed_dim if d == EMBED_DIM else d for d in self.shape]

    def bytes_per_hit(self, max_neighbours: int, embed_dim: int) -> int:
        """Upper bound of this tensor's bytes per hit of the event."""
        per = {"k": max_neighbours, "2k": 2 * max_neighbours, "D": embed_dim}.get(
            str(self.per_hit), self.per_hit)
        return int(per) * self.itemsize


TENSORS: dict[str, TensorSpec] = {t.name: t for t in (
    TensorSpec(FEATURES, "FP32", (ANY, 3), 3),
    TensorSpec(EMBEDDING, "FP32", (ANY, EMBED_DIM), "D"),
    TensorSpec(EDGES, "INT64", (2, ANY), "2k"),
    TensorSpec(EDGES_KEPT, "INT64", (2, ANY), "2k"),
    TensorSpec(SCORES, "FP32", (ANY,), "k"),
    TensorSpec(LABELS, "INT64", (ANY,), 1),
    TensorSpec(OUTPUT, "FP32", (ANY, 3), 3),
    TensorSpec(SIZES, "INT64", (3,), 0),
)}
#: Events per request: the size of the leading event dimension every tensor has on the wire.
EVENTS_PER_REQUEST = 1


def on_wire(array: np.ndarray) -> np.ndarray:
    """One event's tensor as sent: a view with the leading event dimension."""
    return array[None]


def off_wire(name: str, array: np.ndarray) -> np.ndarray:
    """One event's tensor from the wire (leading event dimension dropped).

    Raises:
        ValueError: the array does not hold exactly one event.
    """
    if array.ndim == 0 or array.shape[0] != EVENTS_PER_REQUEST:
        raise ValueError(f"{name} has shape {list(array.shape)}: expected one event "
                         f"(a leading dimension of {EVENTS_PER_REQUEST})")
    return array[0]


# ---------------------------------------------------------------------------- models

ModelKind = Literal["stage", "ensemble", "pipeline", "floor", "floor_ensemble"]

ENSEMBLE_MODEL = "exatrkx"
PIPELINE_MODEL = "exatrkx_pipeline"
IDENTITY_MODEL = "identity"
IDENTITY_ENSEMBLE_MODEL = "identity_ensemble5"
TOUCH_MODEL = "touch"
TOUCH_ENSEMBLE_MODEL = "touch_ensemble5"
#: Steps of the identity ensemble (the floor of a five-stage ensemble).
FLOOR_ENSEMBLE_STEPS = 5


@dataclass(frozen=True)
class ModelSpec:
    """One served model: its name, kind and tensors.

    Attributes:
        name: Triton model name.
        kind: a stage model, the ensemble, the whole-pipeline model, or a floor model.
        inputs: input tensor names, in the order the stage callable takes them.
        outputs: output tensor names.
        stage: the stage a stage model runs.
    """

    name: str
    kind: ModelKind
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    stage: Stage | None = None

    @property
    def output(self) -> str:
        """The (single) output."""
        return self.outputs[0]


#: The stage models: one per stage, named after it.
STAGE_MODELS: dict[Stage, ModelSpec] = {
    "embed": ModelSpec("embed", "stage", (FEATURES,), (EMBEDDING,), "embed"),
    "build": ModelSpec("build", "stage", (EMBEDDING,), (EDGES,), "build"),
    "filter": ModelSpec("filter", "stage", (FEATURES, EDGES), (EDGES_KEPT,), "filter"),
    "gnn": ModelSpec("gnn", "stage", (FEATURES, EDGES_KEPT), (SCORES,), "gnn"),
    "label": ModelSpec("label", "stage", (FEATURES, EDGES_KEPT, SCORES), (LABELS,), "label"),
}

#: Sizes each touch step reads from ``SIZES`` for its output (index into the tensor).
TOUCH_SIZE_INDEX: dict[str, int] = {EMBEDDING: 0, EDGES: 1, EDGES_KEPT: 2}


def _touch_step(stage: Stage) -> ModelSpec:
    """The touch floor's step for ``stage``: the stage's tensors, plus ``SIZES`` where the
    output size is not given by an input (embedding width, edge counts)."""
    spec = STAGE_MODELS[stage]
    extra = (SIZES,) if spec.output in TOUCH_SIZE_INDEX else ()
    return ModelSpec(f"touch_{stage}", "floor", (*spec.inputs, *extra), spec.outputs, stage)


#: The touch ensemble's steps, one per stage (same tensors as the stage models).
TOUCH_STEP_MODELS: dict[Stage, ModelSpec] = {s: _touch_step(s) for s in STAGES}

MODELS: dict[str, ModelSpec] = {
    **{spec.name: spec for spec in STAGE_MODELS.values()},
    ENSEMBLE_MODEL: ModelSpec(ENSEMBLE_MODEL, "ensemble", (FEATURES,), (LABELS,)),
    PIPELINE_MODEL: ModelSpec(PIPELINE_MODEL, "pipeline", (FEATURES,), (LABELS,)),
    IDENTITY_MODEL: ModelSpec(IDENTITY_MODEL, "floor", (FEATURES,), (OUTPUT,)),
    IDENTITY_ENSEMBLE_MODEL: ModelSpec(IDENTITY_ENSEMBLE_MODEL, "floor_ensemble",
                                       (FEATURES,), (OUTPUT,)),
    TOUCH_MODEL: ModelSpec(TOUCH_MODEL, "floor", (FEATURES,), (LABELS,)),
    **{spec.name: spec for spec in TOUCH_STEP_MODELS.values()},
    TOUCH_ENSEMBLE_MODEL: ModelSpec(TOUCH_ENSEMBLE_MODEL, "floor_ensemble",
                                    (FEATURES, SIZES), (LABELS,)),
}
#: Models that serve the pipeline (a repository without the floor models still has these).
SERVED_MODELS: tuple[str, ...] = tuple(n for n, s in MODELS.items()
                                       if not s.kind.startswith("floor"))
#: The floor models.
FLOOR_MODEL_NAMES: tuple[str, ...] = tuple(n for n, s in MODELS.items()
                                           if s.kind.startswith("floor"))

#: Floor rows of the study -> the model that measures them (Triton's own cost): identity
#: (no work) and touch (reads every input, writes the real sizes), one hop and five steps.
FLOOR_MODELS: dict[str, str] = {"hop": IDENTITY_MODEL, "ensemble5": IDENTITY_ENSEMBLE_MODEL,
                                "touch_hop": TOUCH_MODEL,
                                "touch_ensemble5": TOUCH_ENSEMBLE_MODEL}
def touch_sizes(embed_dim: int, edges: int, kept_edges: int) -> np.ndarray:
    """The ``SIZES`` tensor of an event: its embedding width, build edges and kept edges."""
    return np.array([embed_dim, edges, kept_edges], dtype=np.int64)


#: The floor each whole-event model is held against (the same number of hops).
TOUCH_FLOOR_OF: dict[str, str] = {PIPELINE_MODEL: "touch_hop",
                                  ENSEMBLE_MODEL: "touch_ensemble5"}

# ---------------------------------------------------------------------------- options


class Option(IntEnum):
    """A service option (equal to its number: ``Option(4) == 4``)."""

    IN_PROCESS = 0
    NETS_REMOTE = 1
    PYTHON_REMOTE = 2
    EVERY_STAGE_REMOTE = 3
    ENSEMBLE = 4
    PIPELINE_MODEL = 5


@dataclass(frozen=True)
class OptionSpec:
    """What a service option runs where.

    Attributes:
        option: the option.
        description: short name for tables.
        remote_stages: stages sent one by one to their stage models (options 1-3).
        whole_event_model: the model that runs a whole event in one request (options 4-5).
        stage_models: models whose server statistics split the option's time by stage.
    """

    option: Option
    description: str
    remote_stages: tuple[Stage, ...] = ()
    whole_event_model: str | None = None

    @property
    def remote(self) -> bool:
        """True when the option needs a server."""
        return bool(self.remote_stages) or self.whole_event_model is not None

    @property
    def local_stages(self) -> tuple[Stage, ...]:
        """Stages that run in the client process."""
        if self.whole_event_model is not None:
            return ()
        return tuple(s for s in STAGES if s not in self.remote_stages)

    @property
    def requests_per_event(self) -> int:
        """Requests (round trips to the server) per event."""
        return 1 if self.whole_event_model is not None else len(self.remote_stages)

    @property
    def models(self) -> tuple[str, ...]:
        """The models the client sends requests to."""
        if self.whole_event_model is not None:
            return (self.whole_event_model,)
        return tuple(STAGE_MODELS[s].name for s in self.remote_stages)

    @property
    def stage_models(self) -> tuple[str, ...]:
        """Models whose statistics split the server time by stage (the ensemble's steps
        for option 4; option 5 runs every stage inside one model)."""
        if self.whole_event_model == ENSEMBLE_MODEL:
            return tuple(STAGE_MODELS[s].name for s in STAGES)
        return self.models


OPTIONS: dict[Option, OptionSpec] = {spec.option: spec for spec in (
    OptionSpec(Option.IN_PROCESS, "in process"),
    OptionSpec(Option.NETS_REMOTE, "nets remote", remote_stages=NET_STAGES),
    OptionSpec(Option.PYTHON_REMOTE, "build+label remote", remote_stages=("build", "label")),
    OptionSpec(Option.EVERY_STAGE_REMOTE, "every stage remote", remote_stages=STAGES),
    OptionSpec(Option.ENSEMBLE, "ensemble", whole_event_model=ENSEMBLE_MODEL),
    OptionSpec(Option.PIPELINE_MODEL, "whole-pipeline model",
               whole_event_model=PIPELINE_MODEL),
)}
#: Every option, in order.
ALL_OPTIONS: tuple[Option, ...] = tuple(OPTIONS)
#: Options that send whole events in one request.
WHOLE_EVENT_OPTIONS: tuple[Option, ...] = tuple(
    o for o, s in OPTIONS.items() if s.whole_event_model is not None)
#: Options that need a server.
REMOTE_OPTIONS: tuple[Option, ...] = tuple(o for o, s in OPTIONS.items() if s.remote)


def option(value: int | str) -> Option:
    """The option numbered ``value`` (``4``, ``"4"``).

    Raises:
        ValueError: not an option number (callers turn it into their own error).
    """
    try:
        return Option(int(value))
    except (TypeError, ValueError):
        raise ValueError(f"service option must be one of {int(ALL_OPTIONS[0])}-"
                         f"{int(ALL_OPTIONS[-1])}, got {value!r}") from None


# ---------------------------------------------------------------------------- endpoints

Protocol = Literal["grpc", "http"]
PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http")
#: Triton's default ports.
DEFAULT_PORTS: dict[str, int] = {"grpc": 8001, "http": 8000, "metrics": 8002}
#: Served models refuse events with more hits than this (a repository setting). An event
#: of 200 pileup interactions has 130-220k spacepoints; ATLAS ITk graphs hold about 300k.
DEFAULT_MAX_HITS = 500_000
#: Largest gRPC message of the client and of Triton's server (both use INT32_MAX).
MAX_MESSAGE_BYTES = 2**31 - 1


def message_bytes_bound(num_hits: int, max_neighbours: int, embed_dim: int) -> dict[str, int]:
    """Upper bound of each model's request and of its response for an event of
    ``num_hits`` hits: ``{"<model> request": bytes, "<model> response": bytes, ...}``
    (from the tensors' per-hit bounds; edges at most ``max_neighbours`` per hit)."""
    out = {}
    for name, spec in MODELS.items():
        for what, tensors in (("request", spec.inputs), ("response", spec.outputs)):
            out[f"{name} {what}"] = num_hits * sum(
                TENSORS[t].bytes_per_hit(max_neighbours, embed_dim) for t in tensors)
    return out


def check_message_limits(num_hits: int, max_neighbours: int, embed_dim: int) -> None:
    """Raise ValueError when an event of ``num_hits`` hits could need a gRPC message above
    :data:`MAX_MESSAGE_BYTES` (callers turn it into their own error)."""
    bounds = message_bytes_bound(num_hits, max_neighbours, embed_dim)
    what, size = max(bounds.items(), key=lambda kv: kv[1])
    if size > MAX_MESSAGE_BYTES:
        raise ValueError(f"events of {num_hits} hits could need a {what} of {size} bytes, "
                         f"above gRPC's limit of {MAX_MESSAGE_BYTES} (fewer hits, or weights "
                         f"with fewer than {max_neighbours} neighbours per hit)")
#: Model-config parameter holding the JSON settings of an adapter.
CONFIG_PARAMETER = "exatrkx_config"
#: Header that carries the key of the server's restricted APIs over HTTP.
API_KEY_HEADER = "exatrkx-api-key"
#: The same over gRPC (Triton's prefix for restricted-protocol keys).
GRPC_API_KEY_HEADER = f"triton-grpc-protocol-{API_KEY_HEADER}"
#: Environment variable with the key, read by the client and by ``exatrkx serve``.
API_KEY_ENV = "EXATRKX_API_KEY"
#: Environment variable of a bearer token (JWT) the client sends as ``authorization`` (for a
#: proxy that checks tokens, see ``deploy/``).
TOKEN_ENV = "EXATRKX_TOKEN"
