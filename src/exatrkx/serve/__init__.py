"""Serving the pipeline with NVIDIA Triton: model repository, server launcher, adapters.

- :mod:`exatrkx.serve.repository`: :func:`write_repository` writes the stage models, the
  ``exatrkx`` ensemble, the ``exatrkx_pipeline`` model and the floor models;
- :mod:`exatrkx.serve.launcher`: :class:`TritonServer` runs the ``tritonserver`` binary of
  the ``nvidia-pytriton`` wheel (:mod:`exatrkx.serve.binary`) on such a repository;
- :mod:`exatrkx.serve.foreground`: ``exatrkx serve``;
- :mod:`exatrkx.serve.keys`: the key policy of the control APIs;
- :mod:`exatrkx.serve.adapters`: the Python-backend model classes (imported only by the
  backend stub processes), over :mod:`exatrkx.serve.validate`'s input checks;
- :mod:`exatrkx.serve.floors`: the floor models' adapters (numpy only);
- :mod:`exatrkx.serve.deploy`: checks of the container recipe and Kubernetes manifests.

The names below load on first use: a backend stub that imports :mod:`exatrkx.serve.floors`
then does not pay for torch, which the launcher and the repository writer bring in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exatrkx.util.lazy import lazy_names

_API: dict[str, str] = {
    "RepositoryConfig": "exatrkx.serve.repository",
    "ServerConfig": "exatrkx.serve.launcher",
    "TritonServer": "exatrkx.serve.launcher",
    "free_port": "exatrkx.serve.launcher",
    "free_ports": "exatrkx.serve.launcher",
    "is_repository": "exatrkx.serve.repository",
    "parse_config": "exatrkx.serve.repository",
    "write_floor_repository": "exatrkx.serve.repository",
    "write_repository": "exatrkx.serve.repository",
}

__all__ = [
    "RepositoryConfig",
    "ServerConfig",
    "TritonServer",
    "free_port",
    "free_ports",
    "is_repository",
    "parse_config",
    "write_floor_repository",
    "write_repository",
]

if TYPE_CHECKING:
    from exatrkx.serve.launcher import ServerConfig, TritonServer, free_port, free_ports
    from exatrkx.serve.repository import (
        RepositoryConfig,
        is_repository,
        parse_config,
        write_floor_repository,
        write_repository,
    )


__getattr__, __dir__ = lazy_names(__name__, _API, globals(), __all__)
