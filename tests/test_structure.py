"""The layering of docs/architecture.md, read from the source with ``ast`` (nothing imported):
btdnet/, bicor/ and scripts/ (scripts may import the packages; nothing imports a script)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("btdnet", "bicor")
SOURCE_DIRS = (*PACKAGES, "scripts")
# The shared core: the only btdnet modules bicor may import (a name covers its submodules).
# docs/architecture.md lists the same; move a helper bicor needs into one of them rather than
# widen the list.
BICOR_MAY_IMPORT = (
    "btdnet.cli_options",  # the shared option vocabulary (argparse only)
    "btdnet.colormap",
    "btdnet.data.check_cli",  # the data-check command: bicor-check-dataset brings its checks
    "btdnet.engine",
    "btdnet.errors",
    "btdnet.evaluation.benchmark_cli",  # the benchmark's shared options and run (bicor-benchmark)
    "btdnet.evaluation.prediction_folder",  # both benchmarks claim --save-predictions alike
    "btdnet.metrics.confusion",
    "btdnet.models.hub",
    "btdnet.models.image_encoder",
    "btdnet.models.param_groups",
    "btdnet.models.serialization",
    "btdnet.normalization",
    "btdnet.raster",  # raster reading: bands, georeference, image files, scene windows
    "btdnet.safe_write",
    "btdnet.tiling",
)
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
        _module_name(path): path for folder in SOURCE_DIRS for path in (ROOT / folder).rglob("*.py")
    }


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
            if path.parent.name == "scripts":
                names += [f"scripts.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            if path.parent.name == "scripts":  # a script's folder is on sys.path when it runs
                names += [f"scripts.{node.module}"]
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


def _bad_imports(
    graph: dict[str, set[str]], importer: Callable[[str], bool], bad: Callable[[str], bool]
) -> dict[str, list[str]]:
    """Each module that ``importer`` selects, with its imports that ``bad`` refuses (modules
    without any are left out)."""
    found = {name: sorted(filter(bad, deps)) for name, deps in graph.items() if importer(name)}
    return {name: deps for name, deps in found.items() if deps}


def test_the_engine_imports_no_task_code():
    graph = _graph()
    assert any(name.startswith("btdnet.engine") for name in graph), "no btdnet.engine modules"
    assert not _bad_imports(
        graph,
        lambda name: name.startswith("btdnet.engine"),
        lambda d: d.startswith(ENGINE_MAY_NOT_IMPORT),
    )


def test_raster_reading_imports_nothing_of_a_model():
    """btdnet.raster is the shared raster layer (BICOR_MAY_IMPORT): it may import only itself."""
    graph = _graph()
    assert "btdnet.raster.source" in graph, "no btdnet.raster modules found"
    assert not _bad_imports(
        graph,
        lambda name: name.startswith("btdnet.raster"),
        lambda d: not d.startswith("btdnet.raster"),
    )


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


def test_nothing_imports_a_script():
    graph = _graph()
    assert any(name.startswith("scripts.") for name in graph), "no scripts found"
    assert not _bad_imports(
        graph, lambda name: True, lambda d: d == "scripts" or d.startswith("scripts.")
    )


def test_bicor_imports_only_the_shared_core():
    graph = _graph()
    assert any(name.startswith("bicor") for name in graph), "no bicor modules found"
    allowed = tuple(f"{core}." for core in BICOR_MAY_IMPORT)

    def outside_the_core(d: str) -> bool:
        return (
            d.split(".")[0] == "btdnet" and d not in BICOR_MAY_IMPORT and not d.startswith(allowed)
        )

    assert not _bad_imports(graph, lambda name: name.startswith("bicor"), outside_the_core), (
        "bicor may import only the shared core (BICOR_MAY_IMPORT, docs/architecture.md)"
    )


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_definitions(tree: ast.AST) -> set[str]:
    """Underscored names a file defines: functions, classes, assigned names and attributes."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {name for name in names if _private(name)}


def _crossings(path: Path, tree: ast.AST, defined_elsewhere: set[str], own: set[str]) -> list:
    """``from x import _y`` of a project module, and ``obj._y`` where ``_y`` is defined in
    another project file only (not on ``self``/``cls``)."""
    where = path.relative_to(ROOT)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            project = node.level > 0 or (node.module or "").split(".")[0] in SOURCE_DIRS
            local = path.parent.name == "scripts" and (ROOT / "scripts" / f"{node.module}.py")
            if project or (local and local.is_file()):
                found += [
                    f"{where}:{node.lineno} from {node.module} import {alias.name}"
                    for alias in node.names
                    if _private(alias.name)
                ]
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if _private(node.attr) and node.attr in defined_elsewhere and node.attr not in own:
                found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_underscored_name_crosses_a_file():
    trees = {
        path: ast.parse(path.read_text(encoding="utf-8"))
        for folder in SOURCE_DIRS
        for path in (ROOT / folder).rglob("*.py")
    }
    defined = {path: _private_definitions(tree) for path, tree in trees.items()}
    crossing = []
    for path, tree in trees.items():
        elsewhere = set().union(*(names for other, names in defined.items() if other != path))
        crossing += _crossings(path, tree, elsewhere, defined[path])
    assert not crossing, "make the name public where another file needs it: " + "; ".join(crossing)


# The one list of data set names per task; everything else derives from it.
DATASET_REGISTRIES = ("btdnet/registry.py", "bicor/registry.py")


def _registered_names() -> set[str]:
    names: set[str] = set()
    for relative in DATASET_REGISTRIES:
        for node in ast.walk(ast.parse((ROOT / relative).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
    return {name for name in names if name.isidentifier()}  # not the docstrings


def test_dataset_names_are_listed_once():
    """A tuple, list or set of two or more registered names outside the registries is a second
    list; a dict keyed by them is a table of per-data-set facts and may hold registered names
    only."""
    registered = _registered_names()
    assert {"rrsisd", "refsegrs", "grefs", "loveda", "vaihingen", "potsdam"} <= registered
    lists, strays = [], []
    for folder in SOURCE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            where = path.relative_to(ROOT).as_posix()
            if where in DATASET_REGISTRIES:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                    items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                    if len([v for v in items if v in registered]) >= 2:
                        lists.append(f"{where}:{node.lineno}")
                elif isinstance(node, ast.Dict):
                    keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
                    if len([k for k in keys if k in registered]) >= 2:
                        strays += [
                            f"{where}:{node.lineno} {k!r}" for k in keys if k not in registered
                        ]
    assert not lists, f"a second list of data set names (use {DATASET_REGISTRIES}): {lists}"
    assert not strays, f"a data set table keyed by a name no registry lists: {strays}"


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
