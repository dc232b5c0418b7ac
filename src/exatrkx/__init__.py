"""ExaTrkX as a Service: GNN track finding in-process and on NVIDIA Triton.

The public API::

    from exatrkx import load_pipeline, read_event, make_runner

    event = read_event("events/event000000001")
    labels = load_pipeline().run(event.features).labels          # option 0, this process
    with make_runner(5, "127.0.0.1:8001") as runner:               # option 5, a Triton server
        result = runner.run(event.features)

The names below are loaded on first use, so that ``import exatrkx`` (and the command
line's ``--help``) stays fast: torch and the Triton client are heavy imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exatrkx.util.lazy import lazy_names

__version__ = "0.1.0"

#: Public name -> module that defines it.
_API: dict[str, str] = {
    "Pipeline": "exatrkx.core.pipeline",
    "PipelineResult": "exatrkx.core.pipeline",
    "load_pipeline": "exatrkx.core.pipeline",
    "PipelineConfig": "exatrkx.config",
    "Event": "exatrkx.io",
    "read_event": "exatrkx.io",
    "event_sources": "exatrkx.io",
    "write_tracks": "exatrkx.io",
    "Runner": "exatrkx.service.runner",
    "EventResult": "exatrkx.service.runner",
    "make_runner": "exatrkx.service.runner",
    "Option": "exatrkx.contract",
    "ExatrkxError": "exatrkx.errors",
    "InputError": "exatrkx.errors",
    "RejectedInput": "exatrkx.errors",
    "RemoteError": "exatrkx.errors",
    "ServerUnavailable": "exatrkx.errors",
    "ServerFailure": "exatrkx.errors",
    "ServerError": "exatrkx.errors",
}

__all__ = [
    "Event",
    "EventResult",
    "ExatrkxError",
    "InputError",
    "Option",
    "Pipeline",
    "PipelineConfig",
    "PipelineResult",
    "RejectedInput",
    "RemoteError",
    "Runner",
    "ServerError",
    "ServerFailure",
    "ServerUnavailable",
    "__version__",
    "event_sources",
    "load_pipeline",
    "make_runner",
    "read_event",
    "write_tracks",
]

if TYPE_CHECKING:
    from exatrkx.config import PipelineConfig
    from exatrkx.contract import Option
    from exatrkx.core.pipeline import Pipeline, PipelineResult, load_pipeline
    from exatrkx.errors import (
        ExatrkxError,
        InputError,
        RejectedInput,
        RemoteError,
        ServerError,
        ServerFailure,
        ServerUnavailable,
    )
    from exatrkx.io import Event, event_sources, read_event, write_tracks
    from exatrkx.service.runner import EventResult, Runner, make_runner


__getattr__, __dir__ = lazy_names(__name__, _API, globals(), __all__)
