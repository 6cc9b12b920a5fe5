"""Tests of the synthetic referring benchmark (scenes, expressions, RRSIS-D writer)."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from btdnet.data.synthetic import (
    CATEGORIES,
    PALETTE,
    POSITIONS,
    RELATIONS,
    RRSISD_CATEGORIES,
    Expression,
    Scene,
    SceneEvaluator,
    SceneObject,
    choose_expressions,
    describe,
    generate_synthetic_rrsisd,
    is_unambiguous,
    make_synthetic_image,
    matches,
    render_scene,
    sample_scene,
)
from btdnet.data.synthetic.expressions import POSITION_MARGIN, RELATION_MARGIN

REPO = Path(__file__).resolve().parents[3]
SIZE = 96


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic")
    stats = generate_synthetic_rrsisd(
        root, train=24, val=4, test=4, size=SIZE, seed=3, show_progress=False
    )
    return root, stats


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _decode(annotation: dict) -> np.ndarray:
    rle = dict(annotation["segmentation"][0])
    rle["counts"] = rle["counts"].encode()
    mask = mask_utils.decode(rle)
    return (mask.sum(axis=-1) if mask.ndim == 3 else mask) > 0


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    kwargs = dict(train=3, val=2, test=2, size=SIZE, seed=5, show_progress=False)
    generate_synthetic_rrsisd(tmp_path / "a", **kwargs)
    generate_synthetic_rrsisd(tmp_path / "b", **kwargs)
    first, second = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert len(first) == 7 + 4  # 7 JPEGs, refs, instances, synthetic.json, the mark
    assert first == second
    generate_synthetic_rrsisd(tmp_path / "c", **{**kwargs, "seed": 6})
    assert _hashes(tmp_path / "c")["rrsisd/instances.json"] != first["rrsisd/instances.json"]


def test_smaller_sets_share_their_first_images(tmp_path: Path) -> None:
    generate_synthetic_rrsisd(
        tmp_path / "big", train=3, val=2, test=1, size=SIZE, seed=1, show_progress=False
    )
    generate_synthetic_rrsisd(
        tmp_path / "small", train=2, val=1, test=0, size=SIZE, seed=1, show_progress=False
    )
    images = Path("images/rrsisd/JPEGImages")
    big, small = tmp_path / "big" / images, tmp_path / "small" / images
    # train images keep their ids; val image 0 is 00004 in the big set, 00003 in the small one
    assert (big / "00001.jpg").read_bytes() == (small / "00001.jpg").read_bytes()
    assert (big / "00002.jpg").read_bytes() == (small / "00002.jpg").read_bytes()
    assert (big / "00004.jpg").read_bytes() == (small / "00003.jpg").read_bytes()
    assert (big / "00003.jpg").read_bytes() != (small / "00003.jpg").read_bytes()


def test_rerun_into_same_folder_removes_surplus_images(tmp_path: Path) -> None:
    generate_synthetic_rrsisd(tmp_path, train=3, val=0, test=0, size=SIZE, show_progress=False)
    generate_synthetic_rrsisd(tmp_path, train=1, val=0, test=0, size=SIZE, show_progress=False)
    names = sorted(p.name for p in (tmp_path / "images/rrsisd/JPEGImages").iterdir())
    assert names == ["00001.jpg"]


def test_layout_and_keys_follow_rrsisd(tiny_set: tuple[Path, dict]) -> None:
    root, stats = tiny_set
    refs = pickle.loads((root / "rrsisd" / "refs(unc).p").read_bytes())
    instances = json.loads((root / "rrsisd" / "instances.json").read_text())
    jpgs = sorted((root / "images/rrsisd/JPEGImages").iterdir())
    assert [p.name for p in jpgs] == [f"{i:05d}.jpg" for i in range(1, 33)]
    with Image.open(jpgs[0]) as image:
        assert image.format == "JPEG" and image.size == (SIZE, SIZE) and image.mode == "RGB"

    assert instances["categories"] == [
        {"id": i, "name": n} for i, n in enumerate(RRSISD_CATEGORIES)
    ]
    assert instances["categories"][15]["name"] == "storagetank"
    assert instances["images"][0] == {
        "id": 1,
        "file_name": "00001.jpg",
        "width": SIZE,
        "height": SIZE,
    }
    annotation = instances["annotations"][0]
    assert set(annotation) == {"id", "image_id", "bbox", "area", "categories_id", "segmentation"}
    assert isinstance(annotation["segmentation"][0]["counts"], str)
    assert annotation["segmentation"][0]["size"] == [SIZE, SIZE]

    assert isinstance(refs, list) and len(refs) == stats["refs"]
    ref_keys = {"ref_id", "ann_id", "image_id", "sent_ids", "split", "file_name", "category_id",
                "sentences"}  # fmt: skip
    annotations = {a["id"]: a for a in instances["annotations"]}
    sent_ids = []
    for ref in refs:
        assert set(ref) == ref_keys
        ann = annotations[ref["ann_id"]]
        assert ann["image_id"] == ref["image_id"] and ann["categories_id"] == ref["category_id"]
        assert ref["file_name"] == f"{ref['image_id']:05d}.jpg"
        assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]]
        for sentence in ref["sentences"]:
            assert set(sentence) == {"tokens", "raw", "sent_id", "sent"}
            assert sentence["sent"] == " ".join(sentence["tokens"]) == sentence["raw"].lower()
        sent_ids += ref["sent_ids"]
    assert len(set(sent_ids)) == len(sent_ids) == stats["samples"]
    assert [s for s in ("train", "val", "test") if any(r["split"] == s for r in refs)] == [
        "train",
        "val",
        "test",
    ]
    assert stats["splits"]["train"]["images"] == 24 and stats["splits"]["test"]["images"] == 4


def test_pickle_holds_only_plain_containers(tiny_set: tuple[Path, dict]) -> None:
    from btdnet.data import safe_load_pickle

    refs = safe_load_pickle(tiny_set[0] / "rrsisd" / "refs(unc).p")
    assert isinstance(refs[0]["sentences"][0]["tokens"], list)
    assert (tiny_set[0] / "rrsisd" / "refs(unc).p").read_bytes()[:2] == b"\x80\x02"


def test_rle_masks_decode_to_rendered_masks(tiny_set: tuple[Path, dict]) -> None:
    root, _ = tiny_set
    instances = json.loads((root / "rrsisd" / "instances.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for ann in instances["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for image_id, (split, index) in {1: ("train", 0), 7: ("train", 6), 26: ("val", 1)}.items():
        sample = make_synthetic_image(3, split, index, image_size=SIZE)
        anns = by_image[image_id]
        assert len(anns) == len(sample.masks) == len(sample.scene.objects)
        for ann, mask, obj in zip(anns, sample.masks, sample.scene.objects):
            decoded = _decode(ann)
            assert np.array_equal(decoded, mask) and mask.any()
            assert ann["area"] == int(mask.sum())
            ys, xs = np.nonzero(mask)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert ann["categories_id"] == RRSISD_CATEGORIES.index(obj.category)
        assert not np.any(np.sum(sample.masks, axis=0) > 1)  # objects do not overlap
        with Image.open(root / "images/rrsisd/JPEGImages" / f"{image_id:05d}.jpg") as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        assert np.abs(pixels - sample.image).mean() < 4.0  # the JPEG is the rendered image


def test_scene_contents_and_statistics(tiny_set: tuple[Path, dict]) -> None:
    _, stats = tiny_set
    assert len(stats["per_category"]) >= 6
    assert set(stats["per_category"]) <= set(CATEGORIES)
    assert stats["share_images_with_distractors"] >= 0.6
    assert stats["distractor_share"] > 0.3
    assert stats["mean_referred_objects_per_image"] >= 2.0
    assert stats["share_images_with_2plus_referred"] >= 0.8
    assert 3.0 <= stats["mean_objects_per_image"] <= 7.0
    assert stats["images"] == 32 and stats["samples"] >= stats["refs"] >= 32


def test_rendering_draws_each_category_inside_the_image() -> None:
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        scene = sample_scene(rng, image_size=128)
        image, masks = render_scene(scene)
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        for obj, mask in zip(scene.objects, masks):
            seen.add(obj.category)
            assert obj.radius <= obj.cx <= 128 - obj.radius
            assert obj.radius <= obj.cy <= 128 - obj.radius
            ys, xs = np.nonzero(mask)
            assert np.hypot(xs - obj.cx, ys - obj.cy).max() <= obj.radius + 1.5
            if obj.category not in ("storagetank", "baseballfield"):  # base colour dominates
                median = np.median(image[mask].astype(float), axis=0)
                assert np.abs(median - PALETTE[obj.colour]).max() <= 8, obj
    assert seen == set(CATEGORIES)


def _region_inside(obj: SceneObject, position: str, size: int, margin: float) -> bool:
    """Independent reading of the 3x3 grid: is the centre inside the cell(s), with margin?"""
    row, col = POSITIONS[position]
    ok = True
    for axis_value, band in ((obj.cy, row), (obj.cx, col)):
        if band is not None:
            low = band * size / 3 + (margin if band > 0 else -np.inf)
            high = (band + 1) * size / 3 - (margin if band < 2 else -np.inf)
            ok &= low <= axis_value <= high
    return ok


def _same_description(obj: SceneObject, expression: Expression) -> bool:
    return (
        obj.category == expression.category
        and expression.colour in (None, obj.colour)
        and expression.size in (None, obj.size)
    )


def _direction_excess(target: SceneObject, ref: SceneObject, relation: str) -> float:
    ux, uy = RELATIONS[relation]
    dx, dy = target.cx - ref.cx, target.cy - ref.cy
    return dx * ux + dy * uy - abs(dx * uy - dy * ux)


def test_every_chosen_expression_names_exactly_one_object() -> None:
    size, checked, kinds = 256, 0, set()
    for index in range(120):
        rng = np.random.default_rng([11, index])
        scene = sample_scene(rng, image_size=size)
        evaluator = SceneEvaluator(scene)
        for target, expressions in choose_expressions(scene, rng).items():
            assert 1 <= len(expressions) <= 2 and len(set(expressions)) == len(expressions)
            obj = scene.objects[target]
            for e in expressions:
                assert evaluator.matches(e) == [target] == matches(e, scene)
                assert evaluator.truth(e, target) is True
                assert is_unambiguous(e, scene, target)
                others = [
                    o
                    for i, o in enumerate(scene.objects)
                    if i != target and _same_description(o, e)
                ]
                assert _same_description(obj, e)
                if e.position is not None:  # target clearly inside, others clearly outside
                    kinds.add("position")
                    assert _region_inside(obj, e.position, size, POSITION_MARGIN * size)
                    for o in others:
                        assert not _region_inside(o, e.position, size, -POSITION_MARGIN * size)
                elif e.relation is not None:
                    kinds.add("relation")
                    refs = [o for o in scene.objects if _same_description(o, e.reference)]
                    assert len(refs) == 1 and refs[0].category != obj.category
                    margin = RELATION_MARGIN * size
                    assert _direction_excess(obj, refs[0], e.relation) >= margin
                    for o in others:
                        assert _direction_excess(o, refs[0], e.relation) <= -margin
                else:
                    kinds.add("attributes")
                    assert others == []
                checked += 1
    assert checked >= 500
    assert kinds == {"attributes", "position", "relation"}


def _scene(*objects: tuple[str, str, str, float, float], size: int = 300) -> Scene:
    return Scene(
        image_size=size,
        objects=tuple(SceneObject(c, col, s, x, y, 0.0, 20.0) for c, col, s, x, y in objects),
        sun_angle=0.0,
        texture_seed=0,
    )


def test_evaluator_semantics_on_hand_made_scenes() -> None:
    scene = _scene(
        ("vehicle", "red", "small", 50, 150),
        ("vehicle", "red", "small", 250, 150),
        ("storagetank", "white", "large", 150, 150),
    )
    assert matches(Expression("vehicle"), scene) == [0, 1]
    assert matches(Expression("vehicle", position="left"), scene) == [0]
    assert matches(Expression("vehicle", position="top left"), scene) == []
    tank = Expression("storagetank")
    assert matches(Expression("vehicle", relation="left of", reference=tank), scene) == [0]
    assert matches(Expression("vehicle", relation="right of", reference=tank), scene) == [1]
    assert matches(Expression("vehicle", relation="above", reference=tank), scene) == []
    assert matches(Expression("storagetank", position="center"), scene) == [2]
    assert is_unambiguous(Expression("storagetank", colour="white"), scene, 2)
    assert not is_unambiguous(Expression("vehicle", size="small"), scene, 0)

    # a centre on a grid line is neither clearly right nor clearly not: never emitted
    near = _scene(("vehicle", "red", "small", 50, 150), ("vehicle", "red", "small", 203, 150))
    right = Expression("vehicle", position="right")
    assert SceneEvaluator(near).truth(right, 1) is None
    assert matches(right, near) == [1] and not is_unambiguous(right, near, 1)

    # an ambiguous reference makes the relation unusable
    two_tanks = _scene(
        ("vehicle", "red", "small", 40, 150),
        ("storagetank", "white", "large", 150, 150),
        ("storagetank", "white", "large", 150, 40),
    )
    left_of_tank = Expression("vehicle", relation="left of", reference=tank)
    assert SceneEvaluator(two_tanks).truth(left_of_tank, 0) is None
    assert not is_unambiguous(left_of_tank, two_tanks, 0)


def test_expression_validation_and_wording() -> None:
    with pytest.raises(ValueError, match="unknown category"):
        Expression("house")
    with pytest.raises(ValueError, match="not both"):
        Expression("ship", position="left", relation="above", reference=Expression("vehicle"))
    with pytest.raises(ValueError, match="together"):
        Expression("ship", relation="above")
    e = Expression("storagetank", colour="white", size="large", position="bottom right")
    texts = {describe(e, np.random.default_rng(i)) for i in range(40)}
    assert len(texts) > 3
    for text in texts:
        assert "large white storage tank" in text and "bottom right" in text
    r = Expression("airplane", relation="left of", reference=Expression("ship", colour="red"))
    text = describe(r, np.random.default_rng(0))
    assert text.startswith(("the airplane", "an airplane")) and text.endswith("the red ship")
    assert "left of" in text or "left side of" in text


def test_expression_words_are_in_the_uncased_bert_vocabulary(tiny_set: tuple[Path, dict]) -> None:
    from btdnet.resources import default_text_encoder_path

    vocab = set(Path(default_text_encoder_path(), "vocab.txt").read_text().split("\n"))
    words = set(tiny_set[1]["vocabulary"])
    assert words and words <= vocab
    assert {"the", "vehicle", "left"} <= words


def test_output_loads_through_the_rrsisd_loader(tiny_set: tuple[Path, dict]) -> None:
    from btdnet.data import build_referring_dataset

    root, stats = tiny_set
    instances = json.loads((root / "rrsisd" / "instances.json").read_text())
    refs = pickle.loads((root / "rrsisd" / "refs(unc).p").read_bytes())
    annotations = {a["id"]: a for a in instances["annotations"]}
    sentences = {f"{r['ref_id']}-{s['sent_id']}": (r, s) for r in refs for s in r["sentences"]}
    for split in ("train", "val", "test"):
        dataset = build_referring_dataset("rrsisd", root, split, tokenizer=None, image_size=SIZE)
        assert len(dataset) == stats["splits"][split]["samples"]
    for index in (0, len(dataset) - 1):
        item = dataset[index]
        ref, sentence = sentences[item["sample_id"]]
        assert ref["split"] == "test"
        assert item["text"] == sentence["raw"]
        assert item["category"] == RRSISD_CATEGORIES[ref["category_id"]]
        expected = _decode(annotations[ref["ann_id"]])
        assert np.array_equal(item["mask"].numpy().astype(bool), expected)


def test_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        generate_synthetic_rrsisd(tmp_path, train=-1, val=0, test=0, size=SIZE)
    with pytest.raises(ValueError, match="all 0"):
        generate_synthetic_rrsisd(tmp_path, train=0, val=0, test=0, size=SIZE)
    with pytest.raises(ValueError, match="size"):
        generate_synthetic_rrsisd(tmp_path, train=1, val=0, test=0, size=16)


def test_command_line_writes_and_prints_statistics(tmp_path: Path) -> None:
    script = REPO / "scripts" / "make_synthetic.py"
    args = ["--out", str(tmp_path), "--train", "2", "--val", "1", "--test", "1", "--size", "80"]
    done = subprocess.run(
        [sys.executable, str(script), *args, "--no-progress"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "images 4," in done.stdout and "per category" in done.stdout
    assert (tmp_path / "rrsisd" / "refs(unc).p").is_file()
    record = json.loads((tmp_path / "synthetic.json").read_text())
    assert record["arguments"]["size"] == 80 and record["stats"]["images"] == 4
