"""Names of a package that load their module on first use (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any


def lazy_names(package: str, api: Mapping[str, str], namespace: MutableMapping[str, Any],
               names: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose public names load on first use.

    Args:
        package: the package's name (for the error of an unknown name).
        api: public name -> module that defines it.
        namespace: the package's ``globals()``: a loaded name is kept there, so the next
            use does not come back here.
        names: what ``dir()`` lists (the package's ``__all__``).
    """

    def getattr_(name: str) -> Any:
        module = api.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(names)

    return getattr_, dir_
