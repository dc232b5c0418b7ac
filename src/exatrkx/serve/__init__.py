"""Serving the pipeline with NVIDIA Triton: model repository, server launcher, adapters.

- :func:`write_repository` writes the stage models, the ``exatrkx`` ensemble, the
  ``exatrkx_pipeline`` model and the identity floor models;
- :class:`TritonServer` runs the ``tritonserver`` binary of the ``nvidia-pytriton`` wheel on
  such a repository;
- :mod:`exatrkx.serve.adapters` holds the Python-backend model classes (imported only by
  the backend stub processes).
"""

from __future__ import annotations

from exatrkx.serve.launcher import (
    ServerConfig,
    ServerError,
    TritonServer,
    free_port,
    free_ports,
)
from exatrkx.serve.repository import (
    DEFAULT_MAX_HITS,
    ENSEMBLE_MODEL,
    IDENTITY_ENSEMBLE_MODEL,
    IDENTITY_MODEL,
    PIPELINE_MODEL,
    STAGE_MODELS,
    RepositoryConfig,
    is_repository,
    parse_config,
    write_floor_repository,
    write_repository,
)

__all__ = [
    "DEFAULT_MAX_HITS",
    "ENSEMBLE_MODEL",
    "IDENTITY_ENSEMBLE_MODEL",
    "IDENTITY_MODEL",
    "PIPELINE_MODEL",
    "STAGE_MODELS",
    "RepositoryConfig",
    "ServerConfig",
    "ServerError",
    "TritonServer",
    "free_port",
    "free_ports",
    "is_repository",
    "parse_config",
    "write_floor_repository",
    "write_repository",
]
