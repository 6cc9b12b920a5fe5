"""The learning-rate sweep: each variant at its own rate, chosen on validation oIoU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from btdnet.ablation import cli as ablation_cli
from btdnet.ablation import runner as ablation_runner
from btdnet.ablation.sweep import at_factor, check_factors, choose_factors, format_sweep
from btdnet.ablation.variants import KNOWN_VARIANTS
from tests.btdnet.ablation.test_ablation import _tiny_config

DEMO, BASE = KNOWN_VARIANTS["demo"], KNOWN_VARIANTS["family_baseline"]


def _result(name: str, val: float | None, seed: int = 0) -> dict:
    return {"variant": name, "seed": seed, "best_val_oIoU": val}


def test_each_variant_keeps_its_best_validation_factor():
    results = [
        _result("demo@lr0.5", 40.0),
        _result("demo@lr1", 41.0),
        _result("demo@lr2", 45.0),
        _result("family_baseline@lr0.5", 50.0),
        _result("family_baseline@lr1", 49.0),
        _result("family_baseline@lr2", 30.0),
    ]
    chosen, missing = choose_factors(results, [DEMO, BASE], [0.5, 1.0, 2.0], seed=0)
    assert chosen == {"demo": 2.0, "family_baseline": 0.5} and missing == []


def test_ties_go_to_the_base_rate_then_to_the_smaller_factor():
    tie_with_one = [_result("demo@lr0.5", 40.0), _result("demo@lr1", 40.0)]
    tie_with_one.append(_result("demo@lr2", 40.0))
    assert choose_factors(tie_with_one, [DEMO], [0.5, 1.0, 2.0], seed=0)[0] == {"demo": 1.0}
    # 0.5 is closer to the base rate than 2 is (distance 0.5 against 1)
    tie = [_result("demo@lr0.5", 40.0), _result("demo@lr2", 40.0), _result("demo@lr1", 3.0)]
    assert choose_factors(tie, [DEMO], [0.5, 1.0, 2.0], seed=0)[0] == {"demo": 0.5}
    equal_distance = [_result("demo@lr0.5", 7.0), _result("demo@lr1.5", 7.0)]
    assert choose_factors(equal_distance, [DEMO], [1.5, 0.5], seed=0)[0] == {"demo": 0.5}


def test_only_the_sweep_seed_decides():
    # the table's later seeds run at the chosen rate; one that did worse on val (demo@lr0.5,
    # seed 1) must not move the choice, nor a sweep seed's run stand in for another seed's
    results = [
        _result("demo@lr0.5", 60.0),
        _result("demo@lr1", 55.0),
        _result("demo@lr2", 50.0),
        _result("demo@lr0.5", 40.0, seed=1),
    ]
    assert choose_factors(results, [DEMO], [0.5, 1.0, 2.0], seed=0)[0] == {"demo": 0.5}
    assert choose_factors(results, [DEMO], [0.5, 1.0, 2.0], seed=1) == ({}, ["demo"])
    text = format_sweep(results, [DEMO], [0.5, 1.0, 2.0], {"demo": 0.5}, base_lr=1e-3, seed=0)
    assert "| demo | **60.00** | 55.00 | 50.00 |" in text


def test_an_unfinished_sweep_chooses_nothing_for_that_variant():
    results = [_result("demo@lr0.5", 40.0), _result("family_baseline@lr0.5", 1.0)]
    chosen, missing = choose_factors(results, [DEMO, BASE], [0.5, 1.0], seed=0)
    assert chosen == {} and missing == ["demo", "family_baseline"]


def test_factors_must_be_distinct_and_positive():
    assert check_factors([0.5, 2]) == [0.5, 2.0]
    for bad in ([], [0.0], [-1.0], [1.0, 1.0], [float("nan")]):
        with pytest.raises(ValueError, match="--lr-factors"):
            check_factors(bad)


def test_a_swept_variant_sets_the_rate_after_its_own_overrides():
    swept = at_factor(DEMO, 0.5, 1.4e-3)
    assert swept.name == "demo@lr0.5"
    assert swept.overrides == (*DEMO.overrides, "train.lr=0.0007")
    text = format_sweep(
        [_result("demo@lr0.5", 40.0, seed=3), _result("demo@lr1", 41.5, seed=3)],
        [DEMO],
        [0.5, 1.0],
        {"demo": 1.0},
        base_lr=1e-3,
        seed=3,
    )
    assert "| demo | 40.00 | **41.50** |" in text and "seed 3" in text


def test_the_sweep_then_the_seeds_at_the_chosen_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[tuple[str, int, str]] = []

    def fake_run(spec, base, *, worker=0, show_progress=True, keep_checkpoints=False):
        lr = float(next(o for o in spec.overrides if o.startswith("train.lr="))[9:])
        trained.append((spec.variant.name, spec.seed, f"{lr:g}"))
        # validation favours lr 2e-3 for the demo's model, 5e-4 for the baseline
        best = {"demo": 2e-3, "family_baseline": 5e-4}[spec.variant.name.split("@")[0]]
        result = {"variant": spec.variant.name, "seed": spec.seed, "resumed": False}
        result |= {"best_val_oIoU": 50 - abs(lr - best) * 1e4, "oIoU": 40.0 + spec.seed}
        result |= {"mIoU": 30.0, "swap_drop": 10.0, "train_seconds": 1.0}
        result |= {"train_seconds_last_part": 1.0}
        spec.directory.mkdir(parents=True, exist_ok=True)
        spec.result_path.write_text(json.dumps(result))
        return result

    monkeypatch.setattr(ablation_runner, "run_one", fake_run)
    monkeypatch.setattr(ablation_runner, "prepare_folder", lambda *a, **k: None)
    out = tmp_path / "abl"
    out.mkdir()
    args = ["--config", str(_tiny_config(tmp_path)), "--out", str(out), "--no-progress"]
    args += ["--variants", "demo", "family_baseline", "--seeds", "0", "1"]
    args += ["--lr-factors", "0.5", "1", "2"]
    assert ablation_cli.main(args) == 0
    sweep = [t for t in trained if t[1] == 0]
    # 2 variants x 3 rates at the sweep seed, rate by rate from the base rate, none repeated
    assert [name for name, _, _ in sweep] == [
        "demo@lr1",
        "family_baseline@lr1",
        "demo@lr0.5",
        "family_baseline@lr0.5",
        "demo@lr2",
        "family_baseline@lr2",
    ]
    assert sorted(t for t in trained if t[1] == 1) == [
        ("demo@lr2", 1, "0.002"),
        ("family_baseline@lr0.5", 1, "0.0005"),
    ]
    rows = json.loads((out / "ablation.json").read_text())["variants"]
    assert [(r["name"], r["seeds"]) for r in rows] == [
        ("demo@lr2", [0, 1]),
        ("family_baseline@lr0.5", [0, 1]),
    ]
    assert "**" in (out / "lr_sweep.md").read_text()
    # run again: everything finished, nothing is trained
    assert ablation_cli.main(args) == 0 and len(trained) == 8
