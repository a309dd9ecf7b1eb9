"""The package layers: ``core`` at the bottom, ``pricing`` and ``backends`` on it, ``proxy`` on top.

A lower layer that imports a higher one drags the HTTP app into every vendor test and makes the
shared core impossible to reuse; an import cycle means two modules are one module in disguise.
Imports are read from the source (``ast``), lazy ones inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "pricing", "backends", "proxy")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("pricing", "backends", "proxy"),
    "pricing": ("proxy",),
    "backends": ("proxy",),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {imp for imp in _imports(path) if imp in modules and imp != name}
            for name, path in modules.items()}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_lower_layer_never_imports_a_higher_one(layer: str) -> None:
    offences = [
        f"{module} imports {imp}"
        for module, path in _modules().items() if module.split(".")[0] == layer
        for imp in sorted(_imports(path)) if imp.split(".")[0] in FORBIDDEN[layer]
    ]
    assert offences == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = {m: {i for i in imps if not graph_is_package_of(i, m)} for m, imps in _graph().items()}
    assert _cycles(graph) == []


def graph_is_package_of(candidate: str, module: str) -> bool:
    """A module importing its own package's ``__init__`` (re-exports) is not a cycle of modules."""
    return module.startswith(candidate + ".")


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
