"""The package's import graph: no cycle, and imports point one way between layers."""

from __future__ import annotations

import ast
from pathlib import Path

import exatrkx

SRC = Path(exatrkx.__file__).resolve().parent

#: Layers from the bottom: a module may import its own layer and the layers below.
LAYERS: dict[str, int] = {
    "contract": 0, "config": 0, "errors": 0, "constants": 0, "util": 0,
    "core": 1,
    "io": 2, "sim": 2, "physics": 2, "train": 2,
    "service": 3, "serve": 3,
    "acts": 4, "study": 4, "cli": 5,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every ``exatrkx`` module the file imports, at any depth (function-local too)."""
    tree = ast.parse(path.read_text())
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("exatrkx")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if not base.startswith("exatrkx"):
                continue
            for alias in node.names:  # `from exatrkx.x import y`: y may be a module
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {m for m in found if m in MODULES}


MODULES = {module_name(p) for p in SRC.rglob("*.py")}
GRAPH = {module_name(p): imports(p) for p in SRC.rglob("*.py")}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_top_level_module_has_a_layer() -> None:
    tops = {m.split(".")[1] for m in MODULES if "." in m}
    assert tops - {"__main__"} <= set(LAYERS), sorted(tops - set(LAYERS))


def test_no_import_cycle() -> None:
    """Depth-first search over every import (function-local ones included)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt == "exatrkx":  # the package root is the public API on top
                continue
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if state.get(nxt) is None:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if state.get(module) is None:
            visit(module)


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        mine = layer(module)
        if mine is None:
            continue
        for target in targets:
            theirs = layer(target)
            if theirs is not None and theirs > mine:
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_only_the_root_and_the_cli_import_the_public_api() -> None:
    users = sorted(m for m, targets in GRAPH.items() if "exatrkx" in targets
                   and m not in ("exatrkx", "exatrkx.__main__"))
    assert users == [], users


def test_the_cycle_check_finds_a_cycle() -> None:
    """The checker itself: a made-up graph with a cycle fails."""
    saved = dict(GRAPH)
    try:
        GRAPH.clear()
        GRAPH.update({"exatrkx.a": {"exatrkx.b"}, "exatrkx.b": {"exatrkx.a"}})
        try:
            test_no_import_cycle()
        except AssertionError as exc:
            assert "exatrkx.a -> exatrkx.b -> exatrkx.a" in str(exc)
        else:  # pragma: no cover
            raise AssertionError("the cycle was not found")
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
