"""Mutation testing of the modules where a wrong line changes a number or a guarantee.

Reads ``mutation.toml`` (each module with the narrow test selection that must notice a change in
it), copies the project into ``<out>/tree`` (your working tree, or ``--rev``'s commit, is never
mutated), and for each module: runs its tests once unmutated (they must pass; the time sets the
per-mutant timeout), lets Cosmic Ray enumerate every mutant, drops the operators that the config
excludes, keeps a seeded random sample of ``--sample`` mutants (0 = all), and runs the module's
tests against each one. Results go to ``<out>/<module>.sqlite`` (Cosmic Ray sessions: ``cr-report``
and ``cr-html`` read them), ``<out>/summary.json`` and ``<out>/report.md`` (every survivor with
its diff). A time-out (CPU time, see mutation.toml) counts as killed, as in Cosmic Ray.

Run it through ``make mutation`` (one thread, lowest priority) or directly:

    python scripts/mutation.py --module metrics/referring --sample 0
    python scripts/mutation.py --tests-rev HEAD~5 --out runs/mutation-before   # an older suite
    python scripts/mutation.py --compare runs/mutation-before runs/mutation
    python scripts/mutation.py --before-tests HEAD~5   # both suites, each mutant applied once

A module whose tests are missing from the suite, or fail unmutated, is skipped with one line
(a failing suite would score every mutant as killed) and left out of the totals.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from btdnet.cli_options import add_progress_option, add_seed_option
from btdnet.tools.mutation_report import compare, format_report, read_summary

try:
    import tomllib
except ImportError:  # Python 3.10: Cosmic Ray's own dependency reads TOML
    import toml as tomllib  # type: ignore[no-redef]

MARKER = ".mutation-run"


def _load_config(path: Path) -> dict[str, Any]:
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # TOMLDecodeError is a ValueError
        raise SystemExit(f"mutation: {path}: cannot read the config ({error})") from error
    modules = config.get("module", [])
    if not modules or not all("path" in m and "tests" in m for m in modules):
        raise SystemExit(f"mutation: {path}: needs [[module]] entries with 'path' and 'tests'")
    return config


def _prepare_out(out: Path) -> None:
    """Use ``out`` only when it is new, empty, or was written by this script."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SystemExit(f"mutation: {out}: not empty and not written by this script; pick --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(
        "written by the mutation tool (btdnet.tools.mutation)\n", encoding="utf-8"
    )


def _extract(repo: Path, rev: str, target: Path, *paths: str) -> None:
    """``git archive`` of ``repo``'s ``rev`` (only ``paths`` when given), unpacked into
    ``target``."""
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", rev, *paths],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)


def _copy_tree(repo: Path, out: Path, rev: str | None, tests_rev: str | None) -> Path:
    """The files of the project at ``repo`` (tracked + untracked non-ignored, or ``rev``'s) in
    ``out/tree``; with ``tests_rev``, ``tests/`` comes from that revision (the code stays)."""
    tree = out / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir()
    if rev is not None:
        _extract(repo, rev, tree)
    else:
        _copy_working_tree(repo, tree)
    if tests_rev is not None:
        shutil.rmtree(tree / "tests")
        _extract(repo, tests_rev, tree, "tests")
    return tree


def _copy_working_tree(repo: Path, tree: Path) -> None:
    listing = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = repo / name
        if source.is_file():
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


class SkipModule(Exception):
    """A module that cannot be scored against this suite (the reason is the message)."""


def _test_command(module: dict[str, Any], tree: Path | None = None) -> str:
    """The module's pytest command; with ``tree``, test files absent from it are left out (an
    older suite under ``--tests-rev`` may not have them; none left skips the module)."""
    tests = [t for t in module["tests"] if tree is None or (tree / t.split("::")[0]).exists()]
    if not tests:
        raise SkipModule(f"none of its tests ({', '.join(module['tests'])}) is in this suite")
    pytest = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    return shlex.join([*pytest, "-p", "no:warnings", *tests, *module.get("pytest-args", [])])


def _baseline(pytest_args: list[str], tree: Path, wall_limit: float) -> float:
    """Run the unmutated tests in ``tree``; return their CPU seconds. Tests that fail (or select
    nothing) unmutated would score every mutant as killed: the module is skipped instead."""
    code, output, cpu = _run_forked(pytest_args, float("inf"), wall_limit, cwd=tree)
    if code != 0:
        lines = output.strip().splitlines()
        last = lines[-1].strip(" =") if lines else "no output"
        why = "time out" if code is None else f"fail (pytest exit {code}: {last})"
        raise SkipModule(f"its unmutated tests {why}")
    return cpu


def _enumerate(path: str, session: Path, excluded: list[str]) -> list[Any]:
    """Create the Cosmic Ray session of one module; return its work items after exclusion."""
    import re

    import cosmic_ray.commands
    import cosmic_ray.modules
    from cosmic_ray.work_db import WorkDB, use_db

    if session.exists():
        session.unlink()
    modules = list(cosmic_ray.modules.find_modules([Path(path)]))
    with use_db(session, mode=WorkDB.Mode.create) as db:
        cosmic_ray.commands.init(modules, db, {})
        pattern = re.compile("|".join(f"(?:{e})" for e in excluded)) if excluded else None
        annotations = {str(m): _annotation_spans(m) for m in modules}
        items = [
            item
            for item in db.work_items
            if not (pattern and any(pattern.search(m.operator_name) for m in item.mutations))
            and not any(
                _inside(m.start_pos, annotations[str(m.module_path)]) for m in item.mutations
            )
        ]
    return items


def _annotation_spans(path: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of every type annotation of a module. Its files use
    ``from __future__ import annotations``, so annotations are never evaluated and a mutant
    inside one (``str | Path`` -> ``str * Path``) is equivalent by construction."""
    import ast

    spans = []
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
        found = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            found.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            found.append(node.returns)
        spans += [((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset)) for a in found]
    return spans


def _inside(position: tuple[int, int], spans: list) -> bool:
    return any(start <= tuple(position) < end for start, end in spans)


def _sample(items: list[Any], size: int, seed: int) -> list[Any]:
    ordered = sorted(
        items,
        key=lambda i: (i.mutations[0].operator_name, i.mutations[0].occurrence, i.job_id),
    )
    if size <= 0 or size >= len(ordered):
        return ordered
    return random.Random(seed).sample(ordered, size)


# Third-party packages imported once by the parent; each mutant's test run is a forked child
# that imports only the project (from the mutated files), so a mutant costs its tests, not a
# fresh interpreter loading torch.
PRELOAD = ("numpy", "torch", "torchvision", "timm", "transformers", "accelerate", "PIL",
           "safetensors", "yaml", "tqdm", "pytest", "rasterio")  # fmt: skip


# The project's own packages: the parent has imported some of them (this tool is one), so a
# forked child forgets them and imports them again from the tree it tests (the mutated copy).
PROJECT_PACKAGES = ("btdnet", "bicor")


def _forget_project_modules() -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in PROJECT_PACKAGES]:
        del sys.modules[name]


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system, waited-for children included) of a running process, from
    /proc (None where there is no /proc: the limit is then not enforced)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _run_forked(
    pytest_args: list[str], cpu_limit: float, wall_limit: float, cwd: Path | None = None
) -> tuple[int | None, str, float]:
    """Run pytest in a forked child: (exit code, None on a time-out; output tail; CPU seconds).
    The limit that matters is CPU time, so that a loaded machine (this one runs other jobs at a
    higher priority) does not turn slow runs into time-outs; ``wall_limit`` only ends a child
    that hangs without computing."""
    import signal
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as log:
        pid = os.fork()
        if pid == 0:  # child: own process group, output to the log, exit with pytest's code
            exit_code = 1
            try:
                os.setpgid(0, 0)
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                # Python-level streams too (a parent that captures them, like pytest, replaced them)
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
                if cwd is not None:  # this tree's project, here and in subprocesses
                    os.chdir(cwd)
                    sys.path.insert(0, str(cwd))
                    os.environ["PYTHONPATH"] = str(cwd)
                    _forget_project_modules()
                import pytest

                exit_code = int(pytest.main(pytest_args))
            finally:
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()  # os._exit does not
                os._exit(exit_code)
        deadline = time.monotonic() + wall_limit
        code: int | None = None
        while True:
            done, raw, usage = os.wait4(pid, os.WNOHANG)
            if done:
                cpu = usage.ru_utime + usage.ru_stime
                code = os.waitstatus_to_exitcode(raw)
                break
            if (_cpu_seconds(pid) or 0.0) > cpu_limit or time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                _, _, usage = os.wait4(pid, 0)
                cpu = usage.ru_utime + usage.ru_stime
                break
            time.sleep(0.2)
        log.seek(0)
        output = "\n".join(log.read().splitlines()[-20:])
    return code, "timeout" if code is None else output, cpu


def _empty_result(module: dict) -> dict:
    counts = {"killed": 0, "survived": 0, "incompetent": 0, "no-test": 0}
    return {"module": module["path"], "tests": module["tests"], "mutants_total": 0,
            "mutants_run": 0, **counts, "survivors": []}  # fmt: skip


def _prepare_suite(module: dict, settings: dict, tree: Path, label: str) -> dict:
    """The module's result skeleton for the suite in ``tree``: with its command and limits
    (``run``), or ``skipped`` and why (tests missing from this suite, or failing unmutated),
    said in one line."""
    wall_limit = float(settings.get("max-wall", 3600))
    try:
        pytest_args = shlex.split(_test_command(module, tree))[3:]  # after "python -m pytest"
        if not (tree / module["path"]).exists():  # an older revision (--rev) without it
            raise SkipModule(f"{module['path']} is not in this revision")
        baseline = _baseline(pytest_args, tree, wall_limit)
    except SkipModule as reason:
        where = f"{module['path']} ({label})" if label else module["path"]
        print(f"mutation: {where}: skipped, {reason}", file=sys.stderr, flush=True)
        return {**_empty_result(module), "skipped": str(reason)}
    cpu_limit = max(float(settings.get("min-timeout", 60)), 4.0 * baseline)
    return {
        **_empty_result(module),
        "baseline_cpu_seconds": round(baseline, 1),
        "mutants_cpu_seconds": 0.0,
        "outcomes": [],
        "run": (tree, pytest_args, (cpu_limit, wall_limit)),
    }


def _run_module(
    module: dict, settings: dict, args: argparse.Namespace, suites: dict[str, Path]
) -> dict[str, dict]:
    """Score one module's sampled mutants against each suite (label -> its tree; the first
    tree is the one Cosmic Ray enumerates and records; each mutant is applied to every tree).
    A suite whose tests are missing or fail unmutated is skipped for this module, not scored."""
    results = {
        label: _prepare_suite(module, settings, tree, label if len(suites) > 1 else "")
        for label, tree in suites.items()
    }
    if any("run" in r for r in results.values()):
        _mutate(module, settings, args, results)
    for r in results.values():
        r.pop("run", None)
    return results


def _mutate(module: dict, settings: dict, args: argparse.Namespace, results: dict) -> None:
    """Enumerate the module's mutants in the first suite's tree, keep the seeded sample, run
    every scored suite's tests against each; tallies go into ``results``."""
    import contextlib

    import cosmic_ray.plugins
    from cosmic_ray.mutating import use_mutation
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult
    from tqdm import tqdm

    path = module["path"]
    scored = {label: r for label, r in results.items() if "run" in r}
    session = args.out / (path.replace("/", "__").removesuffix(".py") + ".sqlite")
    items = _enumerate(path, session, list(settings.get("exclude-operators", [])))
    size = args.sample if args.sample is not None else int(settings.get("sample", 0))
    seed = args.seed if args.seed is not None else int(settings.get("seed", 0))
    chosen = _sample(items, size, seed)
    chosen_ids = {item.job_id for item in chosen}
    start = time.monotonic()
    with use_db(session, mode=WorkDB.Mode.open) as db:
        skipped = WorkResult(output="not in the sample", worker_outcome=WorkerOutcome.SKIPPED)
        for item in db.pending_work_items:
            if item.job_id not in chosen_ids:
                db.set_result(item.job_id, skipped)
        for item in tqdm(chosen, desc=path, unit="mutant", disable=not args.progress):
            mutation = item.mutations[0]
            operator = cosmic_ray.plugins.get_operator(mutation.operator_name)()
            relative = Path(mutation.module_path)  # to the current folder, the first tree
            if relative.is_absolute():
                relative = relative.relative_to(Path.cwd())
            occurrence = mutation.occurrence
            with contextlib.ExitStack() as stack:
                texts = [
                    stack.enter_context(use_mutation(r["run"][0] / relative, operator, occurrence))
                    for r in scored.values()
                ]
                original, mutated = texts[0]
                if mutated is None:
                    for r in scored.values():
                        r["no-test"] += 1
                    db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.NO_TEST))
                    continue
                diff = _diff(original, mutated, str(relative))
                for label, r in scored.items():
                    outcome = _score(r, mutation, diff)
                    if not args.progress:
                        where = f"{mutation.operator_name} line {mutation.start_pos[0]}"
                        print(f"{path}: {label}: {outcome} {where}", flush=True)  # a log file
            first = next(iter(scored.values()))
            _record(db, item.job_id, first, diff)
    for r in results.values():
        r.update(mutants_total=len(items), mutants_run=len(chosen) if "run" in r else 0)
        r["mutants_wall_seconds"] = round(time.monotonic() - start, 1)


def _diff(original: str, mutated: str, name: str) -> str:
    lines = difflib.unified_diff(
        original.splitlines(keepends=True), mutated.splitlines(keepends=True), name, name, n=1
    )
    return "".join(lines)


def _score(result: dict, mutation: Any, diff: str) -> str:
    """Run one suite's tests against the applied mutant; tally the outcome in ``result``."""
    tree, pytest_args, limits = result["run"]
    code, output, cpu = _run_forked(pytest_args, *limits, cwd=tree)
    outcome = "survived" if code == 0 else "killed"
    result[outcome] += 1
    result["mutants_cpu_seconds"] = round(result["mutants_cpu_seconds"] + cpu, 1)
    where = {"operator": mutation.operator_name, "occurrence": mutation.occurrence}
    where["line"] = mutation.start_pos[0]
    result["outcomes"].append({**where, "outcome": outcome, "output": output[-2000:]})
    if outcome == "survived":
        result["survivors"].append({**where, "diff": diff})
    return outcome


def _record(db: Any, job_id: str, result: dict, diff: str) -> None:
    """The first suite's outcome of the last mutant in the Cosmic Ray session."""
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    last = result["outcomes"][-1]
    test_outcome = TestOutcome.SURVIVED if last["outcome"] == "survived" else TestOutcome.KILLED
    work = WorkResult(
        worker_outcome=WorkerOutcome.NORMAL,
        test_outcome=test_outcome,
        output=last["output"],
        diff=diff,
    )
    db.set_result(job_id, work)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Needs the 'mutation' extra: pip install -e '.[mutation]'.",
    )
    parser.add_argument(
        "--repo", type=Path, default=Path("."), help="the project's folder (default: here)"
    )
    parser.add_argument("--config", type=Path, help="default: REPO/mutation.toml")
    parser.add_argument("--out", type=Path, help="default: REPO/runs/mutation")
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        help="run only modules whose path contains this text (repeatable)",
    )
    parser.add_argument("--sample", type=int, default=None, help="mutants per module (0 = all)")
    add_seed_option(
        parser,
        default=None,
        help="seed of the sample (default: mutation.toml's); a new seed draws mutants that no "
        "test was written against, for an unbiased survival rate after fixing a sample's",
    )
    parser.add_argument("--rev", default=None, help="test this git revision instead of the tree")
    parser.add_argument(
        "--tests-rev",
        default=None,
        help="take tests/ from this revision (e.g. the suite before a change, same code)",
    )
    parser.add_argument(
        "--before-tests",
        default=None,
        metavar="REV",
        help="also score each mutant against tests/ of REV (same code, same sample): "
        "summary-before.json, report-before.md and the before/after table compare.md",
    )
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("BEFORE", "AFTER"),
        help="print the before/after table of two runs (their --out folders or summary.json)",
    )
    add_progress_option(parser)
    args = parser.parse_args(argv)
    args.repo = args.repo.resolve()
    args.config = args.config or args.repo / "mutation.toml"
    args.out = args.out or args.repo / "runs" / "mutation"
    return args


def _write_run(out: Path, suite: str, results: list[dict], title: str) -> str:
    """``summary<suite>.json`` and ``report<suite>.md`` of one suite; returns the report."""
    (out / f"summary{suite}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    report = format_report(results, title)
    (out / f"report{suite}.md").write_text(report, encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        print(compare(*(read_summary(path) for path in args.compare)), end="")
        return 0
    config = _load_config(args.config)
    settings = config.get("settings", {})
    modules = [
        m for m in config["module"] if not args.module or any(s in m["path"] for s in args.module)
    ]
    if args.list or not modules:
        for m in modules:
            print(f"{m['path']}: {_test_command(m)}")
        return 0 if modules else 1
    try:
        import cosmic_ray  # noqa: F401
    except ImportError:
        print("mutation: Cosmic Ray is missing: pip install -e '.[mutation]'", file=sys.stderr)
        return 1
    args.out = args.out.resolve()
    _prepare_out(args.out)
    tree = _copy_tree(args.repo, args.out, args.rev, args.tests_rev)
    title = args.rev or "working tree"
    suites = {title + (f", tests of {args.tests_rev}" if args.tests_rev else ""): tree}
    if args.before_tests:
        before = args.out / "tree-before"
        if before.exists():
            shutil.rmtree(before)
        shutil.copytree(tree, before)
        shutil.rmtree(before / "tests")
        _extract(args.repo, args.before_tests, before, "tests")
        suites[f"{title}, tests of {args.before_tests}"] = before
    os.environ["PYTHONPATH"] = str(tree)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # no stale .pyc of a mutant
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(tree))  # the forked test runs import the tree's project
    _preload()
    previous = os.getcwd()
    os.chdir(tree)  # Cosmic Ray mutates module paths relative to the current folder
    runs: dict[str, list[dict]] = {label: [] for label in suites}
    names = dict(zip(suites, ["", "-before"]))
    try:
        for module in modules:
            for label, result in _run_module(module, settings, args, suites).items():
                runs[label].append(result)
                _write_run(args.out, names[label], runs[label], label)
    finally:
        os.chdir(previous)
    for label, results in runs.items():
        print(_write_run(args.out, names[label], results, label).split("\n## ")[0])
    print(f"survivors and their diffs: {args.out / 'report.md'}")
    if args.before_tests:
        after, before = runs.values()
        table = compare(before, after)
        (args.out / "compare.md").write_text(table, encoding="utf-8")
        print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
