"""Where the ``tritonserver`` binary of the ``nvidia-pytriton`` wheel is, and the environment
its backend stubs need to run this package."""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from exatrkx.core.allocator import allocator_env
from exatrkx.errors import ServerError


def _pytriton_root() -> Path:
    try:
        import pytriton  # only to find its files; the wheel ships the binary
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ServerError("nvidia-pytriton is not installed; it provides tritonserver") from exc
    return Path(pytriton.__file__).resolve().parent


def tritonserver_paths() -> tuple[Path, Path, Path, Path]:
    """The wheel's (binary, backends folder, stub for this Python, bundled libs folder)."""
    root = _pytriton_root()
    dist = root / "tritonserver"
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    binary = dist / "bin" / "tritonserver"
    for path in (binary, dist / "backends" / "python", stub):
        if not path.exists():
            raise ServerError(f"{path} is missing from the nvidia-pytriton wheel")
    return binary, dist / "backends", stub, root.parent / "nvidia_pytriton.libs"


def python_env_paths() -> list[str]:
    """Import paths the backend stubs need to find this package and its dependencies.

    The stub embeds the base interpreter, which does not know this environment; its
    ``site-packages`` folders and the folder holding ``exatrkx`` go on ``PYTHONPATH``.
    """
    paths = [str(Path(__file__).resolve().parents[2])]  # the folder holding exatrkx/
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in paths:
            paths.append(path)
    return paths


def server_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of the server: libpython and bundled libs found, this package importable,
    the allocator settings of :mod:`exatrkx.core.allocator` (unless already set), ``extra``."""
    env = dict(os.environ)
    libs = [sysconfig.get_config_var("LIBDIR") or "", str(tritonserver_paths()[3])]
    old = env.get("LD_LIBRARY_PATH")
    env["LD_LIBRARY_PATH"] = ":".join([p for p in libs if p] + ([old] if old else []))
    py = python_env_paths()
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = ":".join(py + ([old] if old else []))
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(allocator_env(environ=env))
    env.update(extra or {})
    return env
