"""btdnet.tools.mutation (scripts/mutation.py): the logic that decides what is scored (no Cosmic
Ray needed).

A module whose tests are missing from the suite, or fail unmutated, must be skipped with one line
and left out of the totals: scoring it would count every mutant as killed (failing suite) or
abort the whole run. The before/after table must add up only modules scored on both sides.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from btdnet.tools import mutation
from btdnet.tools.mutation_report import format_report

REPO = Path(__file__).resolve().parents[3]


def _tree(tmp_path: Path, test_body: str) -> Path:
    """A tiny project: pkg/mod.py and one test file whose body is ``test_body``."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_mod.py").write_text(
        "from pkg.mod import add\n\n\ndef test_add():\n" + test_body
    )
    return tmp_path


def _args(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(out=tmp_path / "out", sample=None, seed=None, progress=False)


def test_failing_baseline_skips_the_module_with_one_line(tmp_path, capsys):
    tree = _tree(tmp_path, "    assert add(2, 3) == 6\n")
    module = {"path": "pkg/mod.py", "tests": ["tests/test_mod.py"]}
    (result,) = mutation._run_module(module, {}, _args(tmp_path), {"now": tree}).values()
    assert result["skipped"].startswith("its unmutated tests fail (pytest exit 1: 1 failed")
    assert (result["killed"], result["survived"], result["mutants_run"]) == (0, 0, 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mutation: pkg/mod.py: skipped, {result['skipped']}"]
    assert not (tmp_path / "out").exists()  # no Cosmic Ray session was started


def test_a_module_missing_from_an_older_revision_is_skipped_not_a_crash(tmp_path, capsys):
    tree = _tree(tmp_path, "    assert add(2, 3) == 5\n")
    module = {"path": "pkg/newer.py", "tests": ["tests/test_mod.py"]}
    (result,) = mutation._run_module(module, {}, _args(tmp_path), {"now": tree}).values()
    assert result["skipped"] == "pkg/newer.py is not in this revision"
    assert result["mutants_run"] == 0
    assert "pkg/newer.py: skipped" in capsys.readouterr().err


def test_a_selection_that_matches_no_test_is_a_failing_baseline(tmp_path):
    tree = _tree(tmp_path, "    assert add(2, 3) == 5\n")
    module = {"path": "pkg/mod.py", "tests": ["tests/test_mod.py"], "pytest-args": ["-k", "nope"]}
    (result,) = mutation._run_module(module, {}, _args(tmp_path), {"now": tree}).values()
    assert "pytest exit 5" in result["skipped"]  # pytest's "no tests collected"


def test_time_outs_count_cpu_time_not_a_slow_machine(tmp_path):
    """A busy loop is ended by the CPU limit; a run that waits longer than that is not (only
    by the wall limit). Limits are set above the CPU of pytest's own start here (``start``)."""
    tree = _tree(tmp_path, "    assert add(2, 3) == 5\n")
    args = ["-q", "-p", "no:cacheprovider", "tests/test_mod.py"]
    code, _, start = mutation._run_forked(args, 600.0, 600.0, cwd=tree)
    assert code == 0 and start > 0.0
    test = tree / "tests" / "test_mod.py"
    test.write_text("def test_spin():\n    while True:\n        pass\n")
    code, output, cpu = mutation._run_forked(args, start + 0.5, 600.0, cwd=tree)
    assert (code, output) == (None, "timeout") and cpu >= start + 0.5
    test.write_text("import time\n\n\ndef test_nap():\n    time.sleep(2.0)\n")
    code, _, cpu = mutation._run_forked(args, start + 1.0, 600.0, cwd=tree)
    assert code == 0 and cpu < start + 1.0
    code, output, _ = mutation._run_forked(args, 600.0, 0.5, cwd=tree)
    assert (code, output) == (None, "timeout")


def test_the_child_imports_the_project_from_the_tree_not_from_the_parent(tmp_path):
    """The parent has imported ``btdnet`` (this tool is part of it): a mutant of btdnet in the
    tree must still be what the child's tests import."""
    tree = tmp_path / "tree"
    (tree / "btdnet").mkdir(parents=True)
    (tree / "btdnet" / "__init__.py").write_text("MUTATED = True\n")
    (tree / "tests").mkdir()
    (tree / "tests" / "test_seen.py").write_text(
        "import btdnet\n\n\ndef test_the_mutated_copy():\n    assert btdnet.MUTATED\n"
    )
    args = ["-q", "-p", "no:cacheprovider", "tests/test_seen.py"]
    code, output, _ = mutation._run_forked(args, 600.0, 600.0, cwd=tree)
    assert code == 0, output
    import btdnet

    assert not hasattr(btdnet, "MUTATED")  # the parent's own copy is untouched


def test_test_files_missing_from_an_older_suite(tmp_path, capsys):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_old.py").write_text("")
    module = {"path": "pkg/mod.py", "tests": ["tests/test_new.py", "tests/test_old.py::test_x"]}
    command = mutation._test_command(module, tmp_path)
    assert command.endswith(" tests/test_old.py::test_x") and "test_new" not in command
    gone = {"path": "pkg/mod.py", "tests": ["tests/test_new.py"]}
    with pytest.raises(mutation.SkipModule, match=r"none of its tests \(tests/test_new.py\)"):
        mutation._test_command(gone, tmp_path)
    (result,) = mutation._run_module(gone, {}, _args(tmp_path), {"now": tmp_path}).values()
    assert result["skipped"] == "none of its tests (tests/test_new.py) is in this suite"
    assert "mutation: pkg/mod.py: skipped, none of its tests" in capsys.readouterr().err


def test_selection_of_the_evaluation_module_runs_no_cli_test():
    """The benchmark CLI tests start a subprocess that timed out at nice 19 (the whole run died)."""
    config = mutation._load_config(REPO / "mutation.toml")
    (entry,) = [m for m in config["module"] if m["path"].endswith("referring_eval.py")]
    keyword = entry["pytest-args"][entry["pytest-args"].index("-k") + 1]
    assert "prediction" not in keyword.split(" or ")
    for name in ("cli", "benchmark_cli"):
        assert name not in keyword


def _result(module, killed, survived, outcomes=None, skipped=None):
    result = {"module": module, "killed": killed, "survived": survived, "survivors": []}
    result.update(mutants_total=10, mutants_run=killed + survived)
    result["outcomes"] = outcomes or [
        {"operator": "op", "occurrence": i, "line": i, "outcome": "x"}
        for i in range(killed + survived)
    ]
    if skipped:
        result["skipped"] = skipped
    return result


def test_report_leaves_skipped_modules_out_of_the_total():
    results = [_result("a.py", 3, 1), _result("b.py", 0, 0, skipped="its tests fail")]
    report = format_report(results, "working tree")
    assert "1 of 4 mutants survived (25.0%) over 1 modules; 1 skipped." in report
    assert "| a.py | 10 | 4 | 3 | 1 | 25.0% |" in report
    assert "| b.py | - | - | - | - | skipped: its tests fail |" in report


def test_compare_totals_only_modules_scored_on_both_sides():
    before = [_result("a.py", 2, 2), _result("b.py", 0, 0, skipped="gone"), _result("c.py", 1, 3)]
    after = [_result("a.py", 4, 0), _result("b.py", 5, 1), _result("c.py", 3, 1)]
    table = mutation.compare(before, after)
    assert "| a.py | 2 / 2 | 4 / 0 |" in table
    assert "| b.py | skipped: gone | 5 / 1 |" in table
    # a + c: before 5 of 8 survived, after 1 of 8; b (6 mutants) only after: not in the totals.
    assert table.strip().splitlines()[-1] == (
        "| modules scored in both | 5 of 8 survived (62.5%) | 1 of 8 survived (12.5%) |"
    )


def test_compare_refuses_two_different_samples():
    other = [{"operator": "op", "occurrence": 7, "line": 1, "outcome": "killed"}]
    with pytest.raises(SystemExit, match=r"a\.py: the two runs sampled other mutants"):
        mutation.compare([_result("a.py", 1, 0)], [_result("a.py", 1, 0, outcomes=other)])


def test_compare_cli_and_a_bad_summary(tmp_path, capsys):
    (tmp_path / "before").mkdir()
    (tmp_path / "before" / "summary.json").write_text(json.dumps([_result("a.py", 1, 1)]))
    (tmp_path / "after.json").write_text(json.dumps([_result("a.py", 2, 0)]))
    assert mutation.main(["--compare", str(tmp_path / "before"), str(tmp_path / "after.json")]) == 0
    assert "| a.py | 1 / 1 | 2 / 0 |" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text('{"module": 1}')
    with pytest.raises(SystemExit, match=r"bad.json: not a summary.json written by"):
        mutation.main(["--compare", str(tmp_path / "bad.json"), str(tmp_path / "after.json")])


def test_sample_is_seeded_and_independent_of_order():
    def item(op, occurrence, job):
        return SimpleNamespace(
            mutations=[SimpleNamespace(operator_name=op, occurrence=occurrence)], job_id=job
        )

    items = [item(f"op{i % 3}", i, f"job{i}") for i in range(20)]
    first = [i.job_id for i in mutation._sample(items, 5, seed=0)]
    again = [i.job_id for i in mutation._sample(list(reversed(items)), 5, seed=0)]
    assert first == again and len(set(first)) == 5
    assert [i.job_id for i in mutation._sample(items, 5, seed=1)] != first
    assert len(mutation._sample(items, 0, seed=0)) == 20  # 0 = every mutant


def test_annotation_mutants_are_recognised(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("x: int = 1\n\n\ndef f(a: str | None, b=2) -> list[int]:\n    return [a]\n")
    spans = mutation._annotation_spans(source)
    assert mutation._inside((1, 3), spans)  # int
    assert mutation._inside((4, 13), spans)  # the | inside "str | None"
    assert mutation._inside((4, 33), spans)  # list[int]
    assert not mutation._inside((1, 9), spans)  # the value 1
    assert not mutation._inside((4, 23), spans)  # b's default 2
    assert not mutation._inside((5, 11), spans)  # the returned list


def test_paired_run_scores_the_same_mutants_against_both_suites(tmp_path, monkeypatch):
    """``--before-tests``: each mutant of ``-a`` is applied in both trees and each suite scores
    it. The old suite checks neg(0) == 0, which ``+a`` and ``a`` also give; the new one checks
    neg(2) == -2, which neither gives. (~a and not a are excluded to keep the test short.)"""
    pytest.importorskip("cosmic_ray", reason="Cosmic Ray is the 'mutation' extra")
    suites = {}
    for label, check in (("new", "neg(2) == -2"), ("old", "neg(0) == 0")):
        tree = tmp_path / label
        (tree / "pkg").mkdir(parents=True)
        (tree / "pkg" / "__init__.py").write_text("")
        (tree / "pkg" / "mod.py").write_text("def neg(a):\n    return -a\n")
        (tree / "tests").mkdir()
        test = f"from pkg.mod import neg\n\n\ndef test_neg():\n    assert {check}\n"
        (tree / "tests" / "test_mod.py").write_text(test)
        suites[label] = tree
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(suites["new"])  # Cosmic Ray enumerates relative to the first tree
    module = {"path": "pkg/mod.py", "tests": ["tests/test_mod.py"]}
    settings = {"exclude-operators": ["_(Invert|Not)$"]}
    args = SimpleNamespace(out=tmp_path / "out", sample=0, seed=None, progress=False)
    results = mutation._run_module(module, settings, args, suites)
    new, old = results["new"], results["old"]
    operators = ["core/ReplaceUnaryOperator_Delete_USub", "core/ReplaceUnaryOperator_USub_UAdd"]
    for result, outcome in ((new, "killed"), (old, "survived")):
        assert result["baseline_cpu_seconds"] >= 0.0 and result["mutants_run"] == 2
        assert sorted((o["operator"], o["outcome"]) for o in result["outcomes"]) == [
            (operator, outcome) for operator in operators
        ]
    assert (new["killed"], new["survived"], old["killed"], old["survived"]) == (2, 0, 0, 2)
    assert "-    return -a\n+    return +a" in "".join(s["diff"] for s in old["survivors"])
    for tree in suites.values():  # every mutant was put back in both trees
        assert (tree / "pkg" / "mod.py").read_text() == "def neg(a):\n    return -a\n"
    assert mutation.compare([old], [new]).strip().splitlines()[-1] == (
        "| modules scored in both | 2 of 2 survived (100.0%) | 0 of 2 survived (0.0%) |"
    )
