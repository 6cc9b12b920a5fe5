"""The generalized synthetic generator: multi-target and no-target expressions checked by the
scene geometry, the gRefCOCO-format writer, its shares, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from btdnet.data import build_referring_dataset, check_referring_dataset, is_usable
from btdnet.data.synthetic import (
    Expression,
    Scene,
    SceneEvaluator,
    SceneObject,
    choose_generalized,
    describe_multi,
    generate_synthetic_grefs,
    make_synthetic_image,
    multi_target_expressions,
    no_target_expressions,
)

REPO = Path(__file__).resolve().parents[3]


def _scene() -> Scene:
    """Three red vehicles (two on the left), one white ship at the right; 300 px."""
    objects = (
        SceneObject("vehicle", "red", "small", 40, 60, 0.0, 20),
        SceneObject("vehicle", "red", "small", 45, 240, 0.0, 20),
        SceneObject("vehicle", "red", "large", 150, 150, 0.0, 33),
        SceneObject("ship", "white", "small", 260, 150, 0.0, 39),
    )
    return Scene(image_size=300, objects=objects, sun_angle=0.0, texture_seed=0)


def test_multi_target_expressions_are_clear_for_every_target() -> None:
    evaluator = SceneEvaluator(_scene())
    found = multi_target_expressions(evaluator)
    by_targets = {}
    for expression, targets in found:
        assert len(targets) >= 2
        assert evaluator.matches(expression) == list(targets)
        assert all(evaluator.truth(expression, t) is True for t in targets)
        by_targets.setdefault(targets, []).append(expression)
    assert Expression("vehicle") in by_targets[(0, 1, 2)]  # "all the vehicles"
    assert Expression("vehicle", colour="red", size="small") in by_targets[(0, 1)]
    assert Expression("vehicle", position="left") in by_targets[(0, 1)]
    assert all(3 not in targets for targets in by_targets)  # one ship: never multi
    rng = np.random.default_rng(0)
    texts = {describe_multi(Expression("vehicle", position="left"), 2, rng) for _ in range(20)}
    heads = ("the two vehicles", "all the vehicles")
    assert texts <= {f"{h} on the left{s}" for h in heads for s in ("", " side")}


def test_no_target_expressions_match_nothing() -> None:
    scene = _scene()
    evaluator = SceneEvaluator(scene)
    kinds = no_target_expressions(evaluator)
    for options in kinds.values():
        assert all(evaluator.matches(e) == [] for e in options)
    assert Expression("windmill") in kinds["category"]  # absent category
    assert Expression("vehicle", colour="blue") in kinds["colour"]  # every vehicle is red
    assert Expression("ship", size="large") in kinds["size"]
    assert Expression("ship", position="left") in kinds["position"]
    assert Expression("vehicle", colour="red") not in kinds["colour"]  # present: not a negative
    assert all(e.category != "vehicle" or e.position != "left" for e in kinds["position"])
    ship = Expression("ship")
    assert Expression("vehicle", relation="right of", reference=ship) in kinds["relation"]
    assert Expression("vehicle", relation="left of", reference=ship) not in kinds["relation"]


def test_choose_generalized_counts_and_kinds() -> None:
    rng = np.random.default_rng(1)
    multi, negatives = choose_generalized(_scene(), rng, multi_count=2, no_target_count=4)
    assert len(multi) == 2 and len({targets for targets, _, _ in multi}) == 2
    assert len(negatives) == 4
    evaluator = SceneEvaluator(_scene())
    for kind, expression, text in negatives:
        assert evaluator.matches(expression) == [] and text.split()[-1] in text
        assert kind in {"category", "colour", "size", "position", "relation"}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("grefs_synthetic")
    stats = generate_synthetic_grefs(
        root, train=6, val=2, test=2, size=96, seed=3, show_progress=False
    )
    return root, stats


def test_writer_loads_and_checks_clean(written) -> None:
    root, stats = written
    report = check_referring_dataset("grefs", root, progress=False)
    assert is_usable(report) and report["problems"] == []
    for split, row in stats["splits"].items():
        assert report["splits"][split]["no_target"] == row["no_target"]
        assert report["splits"][split]["multi_target"] == row["multi_target"]
    assert (
        stats["splits"]["train"]["no_target"] > 0 and stats["splits"]["train"]["multi_target"] > 0
    )
    train = build_referring_dataset("grefs", root, "train", None, image_size=96)
    refs = json.loads((root / "grefs(unc).json").read_text())
    instances = json.loads((root / "instances.json").read_text())
    by_ann = {a["id"]: a for a in instances["annotations"]}
    for index, record in enumerate(train.records):
        mask = train.original_mask(index)
        assert mask.any() != record.no_target
        if record.target_count > 1:  # the union of the referred annotations
            ref_id = int(record.sample_id.split("-")[0])
            ref = next(r for r in refs if r["ref_id"] == ref_id)
            area = sum(by_ann[a]["area"] for a in ref["ann_id"])
            assert int(mask.sum()) == area  # objects never overlap in the synthetic scenes


def test_same_scenes_as_the_rrsisd_generator(written) -> None:
    root, _ = written
    instances = json.loads((root / "instances.json").read_text())
    sample = make_synthetic_image(3, "train", 0, image_size=96)
    first = [a for a in instances["annotations"] if a["image_id"] == 1]
    assert len(first) == len(sample.scene.objects)
    assert [a["area"] for a in first] == [int(m.sum()) for m in sample.masks]


def test_shares_follow_the_options(tmp_path) -> None:
    stats = generate_synthetic_grefs(
        tmp_path / "none", train=3, val=0, test=0, size=96, seed=1,
        multi_target_share=0.0, no_target_share=0.0, show_progress=False,
    )  # fmt: skip
    assert stats["splits"]["train"]["multi_target"] == stats["splits"]["train"]["no_target"] == 0
    many = generate_synthetic_grefs(
        tmp_path / "many", train=8, val=0, test=0, size=96, seed=1,
        multi_target_share=0.1, no_target_share=0.5, show_progress=False,
    )  # fmt: skip
    assert 0.35 <= many["no_target_share"] <= 0.65
    with pytest.raises(ValueError, match="below 1"):
        generate_synthetic_grefs(tmp_path / "x", multi_target_share=0.5, no_target_share=0.5)


def test_cli_generalized(tmp_path) -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_synthetic.py"), "--out", str(tmp_path),
         "--generalized", "--train", "2", "--val", "1", "--test", "1", "--size", "96",
         "--no-target-share", "0.3", "--no-progress"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "no-target" in completed.stdout and (tmp_path / "grefs(unc).json").is_file()
    arguments = json.loads((tmp_path / "synthetic.json").read_text())["arguments"]
    assert arguments["no_target_share"] == 0.3
