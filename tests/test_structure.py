"""The layering of docs/architecture.md, read from the source with ``ast`` (nothing imported)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("btdnet", "bicor")
ENGINE_MAY_NOT_IMPORT = (
    "btdnet.models",
    "btdnet.data",
    "btdnet.evaluation",
    "btdnet.predict",
    "btdnet.task",
    "btdnet.demo",
    "bicor",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        imported = _imports(path, modules)
        # ``from a.b import c`` names both a.b and a.b.c; keep the module that is really used.
        graph[name] = {m for m in imported if not any(o.startswith(m + ".") for o in imported)}
    return graph


def test_the_engine_imports_no_task_code():
    graph = _graph()
    engine = {name: deps for name, deps in graph.items() if name.startswith("btdnet.engine")}
    assert engine, "no btdnet.engine modules found"
    bad = {
        name: sorted(d for d in deps if d.startswith(ENGINE_MAY_NOT_IMPORT))
        for name, deps in engine.items()
    }
    assert not {name: deps for name, deps in bad.items() if deps}


def test_no_import_cycles_between_modules():
    graph = _graph()
    # Package __init__ files re-export their children; an edge into a package is an edge into
    # whichever child defines the name, so cycles through __init__ files are not counted.
    packages = {name for name in graph if (ROOT / Path(*name.split(".")) / "__init__.py").is_file()}
    edges = {
        n: {d for d in deps if d not in packages} for n, deps in graph.items() if n not in packages
    }
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, " | ".join(" -> ".join(c) for c in cycles)


def test_no_function_over_80_lines():
    long = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > 80:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} {lines}")
    assert not long, long


SCRIPT_MAX_LINES = 80


def test_scripts_are_thin_wrappers():
    """Every scripts/*.py is at most 80 lines and defines no class and at most one function (a
    ``main`` naming its messages): the work lives in the packages, where the rules above apply."""
    scripts = sorted((ROOT / "scripts").glob("*.py"))
    assert scripts, "no scripts found"
    thick = []
    for path in scripts:
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        defined = [
            node.name
            for node in ast.parse(text).body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        if lines > SCRIPT_MAX_LINES or defined not in ([], ["main"]):
            thick.append(f"{path.relative_to(ROOT)}: {lines} lines, defines {defined}")
    assert not thick, thick
