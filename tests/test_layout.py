"""The layout's rules: no import cycle among the project's modules (function-level imports
included), and no module too long to live in.

An edge is every ``import`` / ``from ... import`` statement anywhere in a module (module
level, inside functions, under ``TYPE_CHECKING``), resolved to the project module it names:
``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``.
Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those implicit parent
edges are not counted (a package that re-exports its submodules would otherwise always
"cycle" with them), which is how import linters count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("experiments", "torch_impl", "jax_impl")
MAX_LINES = 600


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imported_names(module: str, path: Path) -> list[str]:
    """Every module name an import statement in ``path`` names, absolute (relative ones resolved)."""
    is_package = path.name == "__init__.py"
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            names += [f"{prefix}.{alias.name}" for alias in node.names]
            names.append(prefix)
    return names


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for name in imported_names(module, path):
            if name in files:
                graph[module].add(name)
    # ``from a.b import c`` where c is a module: the edge is to a.b.c, not also to a.b
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                submodules = [f"{node.module}.{a.name}" for a in node.names]
                if all(s in files for s in submodules):
                    graph[module].discard(node.module)
    for module in graph:
        graph[module].discard(module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_relative_and_function_level_imports_are_edges(tmp_path: Path) -> None:
    path = tmp_path / "__init__.py"
    path.write_text("def f():\n    from .sub import thing\n    import os.path\n")
    names = imported_names("pkg", path)
    assert "pkg.sub.thing" in names and "pkg.sub" in names and "os.path" in names


def test_no_import_cycle_among_the_project_modules() -> None:
    graph = import_graph()
    assert len(graph) > 50, "the module walk found too few modules"
    found = cycles(graph)
    assert not found, "import cycles (function-level imports included): " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_the_line_limit(package: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for m, p in module_files().items()
        if m.split(".")[0] == package and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
