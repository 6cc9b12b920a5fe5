"""The gRefCOCO-format reader (--dataset grefs) on a fixture written here: polygon and RLE
annotations, a multi-target union, a no-target ref, crowd and broken entries, the check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from btdnet.data import DatasetError, build_referring_dataset, check_referring_dataset
from btdnet.data.grefs import load_grefs_records

H, W = 23, 31  # odd sizes


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


def _sentence(sent_id: int, text: str) -> dict:
    return {"sent_id": sent_id, "raw": text, "sent": text.lower(), "tokens": text.split()}


def write_grefs(root: Path) -> dict[str, np.ndarray]:
    """Two images; refs: single (polygon), multi (polygon + RLE), no-target, crowd-only."""
    (root / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(root / "images" / name)
    box = np.zeros((H, W), bool)
    box[2:8, 3:10] = True
    blob = np.zeros((H, W), bool)
    blob[15:20, 20:29] = True
    polygon = [3, 2, 10, 2, 10, 8, 3, 8]  # x, y corners of the box (COCO polygon)
    instances = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": H, "width": W},
            {"id": 2, "file_name": "b.png", "height": H, "width": W},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3, "segmentation": [polygon], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 3, "segmentation": _rle(blob), "iscrowd": 0},
            {"id": 12, "image_id": 2, "category_id": 5, "segmentation": _rle(blob), "iscrowd": 1},
        ],
        "categories": [{"id": 3, "name": "vehicle"}, {"id": 5, "name": "ship"}],
    }
    refs = [
        {"ref_id": 0, "image_id": 1, "ann_id": [10], "category_id": [3], "split": "train",
         "sent_ids": [0], "sentences": [_sentence(0, "the left vehicle")], "no_target": False},
        {"ref_id": 1, "image_id": 1, "ann_id": [10, 11], "category_id": [3, 3], "split": "train",
         "sent_ids": [1, 2], "no_target": False,
         "sentences": [_sentence(1, "all the vehicles"), _sentence(2, "both cars")]},
        {"ref_id": 2, "image_id": 2, "ann_id": [-1], "category_id": [], "split": "val",
         "sent_ids": [3], "sentences": [_sentence(3, "the red ship")], "no_target": True},
        {"ref_id": 3, "image_id": 1, "ann_id": 11, "category_id": 3, "split": "val",
         "sent_ids": [4], "sentences": [_sentence(4, "the right vehicle")], "no_target": True},
    ]  # fmt: skip
    (root / "grefs(unc).json").write_text(json.dumps(refs))
    (root / "instances.json").write_text(json.dumps(instances))
    polygon_mask = mask_utils.decode(mask_utils.frPyObjects([polygon], H, W)).sum(-1) > 0
    return {"single": polygon_mask, "multi": polygon_mask | blob, "blob": blob}


@pytest.fixture
def grefs(tmp_path):
    root = tmp_path / "grefs"
    return root, write_grefs(root)


def test_records_masks_and_counts(grefs):
    root, masks = grefs
    records, stats = load_grefs_records(root, None)
    assert [r.sample_id for r in records] == ["0-0", "1-1", "1-2", "2-3", "3-4"]
    assert [r.target_count for r in records] == [1, 2, 2, 0, 1]
    assert stats.samples == 5 and stats.multi_target == 2 and stats.no_target == 1
    assert stats.splits == ["train", "val"]
    by_id = {r.sample_id: r for r in records}
    np.testing.assert_array_equal(by_id["0-0"].mask.decode(), masks["single"])
    np.testing.assert_array_equal(by_id["1-2"].mask.decode(), masks["multi"])  # union
    assert by_id["2-3"].no_target and not by_id["2-3"].mask.decode().any()
    assert by_id["2-3"].mask.decode().shape == (H, W) and by_id["2-3"].category == ""
    assert by_id["0-0"].category == "vehicle" and by_id["0-0"].category_id == 3
    assert by_id["1-1"].image_size == (H, W)
    # ref 3: a bare int ann_id is a list of one; its wrong no_target flag is a warning
    assert by_id["3-4"].target_count == 1
    assert [p.kind for p in stats.problems] == ["inconsistent_target"]


def test_dataset_items_carry_present(grefs):
    root, masks = grefs
    val = build_referring_dataset("grefs", root, "val", None, image_size=32)
    items = [val[i] for i in range(len(val))]
    assert [item["present"] for item in items] == [0, 1]
    assert int(items[0]["mask"].sum()) == 0 and int(items[1]["mask"].sum()) > 0
    np.testing.assert_array_equal(val.original_mask(1), masks["blob"])


def test_check_reports_generalized_counts(grefs):
    root, _ = grefs
    report = check_referring_dataset("grefs", root, progress=False)
    assert report["splits"]["train"] == {
        "samples": 3, "images": 1, "targeted": 3, "multi_target": 2, "no_target": 0,
    }  # fmt: skip
    assert report["splits"]["val"]["no_target"] == 1
    assert [p["kind"] for p in report["problems"]] == ["inconsistent_target"]


def test_broken_entries_name_the_file(grefs):
    root, _ = grefs
    refs = json.loads((root / "grefs(unc).json").read_text())
    refs[0]["ann_id"] = [99]
    refs.append({"ref_id": 7, "image_id": 2, "ann_id": [12], "category_id": [5],
                 "split": "train", "sentences": [_sentence(9, "the crowd")]})  # fmt: skip
    (root / "grefs(unc).json").write_text(json.dumps(refs))
    with pytest.raises(DatasetError, match=r"instances\.json: ref 0 points to annotation 99"):
        load_grefs_records(root, "train")
    records, stats = load_grefs_records(root, "train", strict=False)
    kinds = sorted(p.kind for p in stats.problems)
    assert kinds == ["bad_annotation", "unknown_annotation"]  # 99 unknown, 7 only crowd
    assert [r.sample_id for r in records] == ["1-1", "1-2"]
    (root / "instances.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"instances\.json: not valid JSON"):
        load_grefs_records(root, "train")
    with pytest.raises(DatasetError, match="split 'nope' not found"):
        (root / "instances.json").write_text(json.dumps({"annotations": []}))
        load_grefs_records(root, "nope")


def test_negatives_for_a_single_target_set(tmp_path):
    from referring_fixtures import write_rrsisd_fixture

    from btdnet.data.negatives import add_negatives

    write_rrsisd_fixture(tmp_path / "data")
    plain = build_referring_dataset("rrsisd", tmp_path / "data", "train", None, image_size=32)
    with_neg = build_referring_dataset(
        "rrsisd", tmp_path / "data", "train", None, image_size=32, negatives=1.0
    )
    negatives = [r for r in with_neg.records if r.no_target]
    assert len(with_neg) == len(plain) + len(negatives) and negatives
    categories = {r.image_id: r.category_id for r in plain.records}
    for record in negatives:
        source_id = record.sample_id.split("-neg")[0]
        source = next(r for r in plain.records if r.sample_id == source_id)
        assert record.expression == source.expression and record.image_id != source.image_id
        assert categories[record.image_id] != source.category_id
        index = with_neg.records.index(record)
        assert with_neg[index]["present"] == 0 and not with_neg.original_mask(index).any()
    again = build_referring_dataset(
        "rrsisd", tmp_path / "data", "train", None, image_size=32, negatives=1.0
    )
    assert [r.sample_id for r in again.records] == [r.sample_id for r in with_neg.records]
    assert add_negatives(plain.records, {}, share=0.0) == plain.records
    with pytest.raises(ValueError, match="share"):
        add_negatives(plain.records, {}, share=1.5)
