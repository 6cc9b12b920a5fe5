"""Ground truth as the peers' loaders read it, on crafted sets with hand-computed scores.

1. RRSIS-D: one annotation whose ``segmentation`` holds two overlapping RLE parts, two 100x100
   squares of a 200x200 image overlapping on a 50x50 square (union 17,500 px, overlap 2,500).
   The LAVT family's ``REFER.getMask`` sums the decoded parts and its dataset keeps ``== 1``, so
   LAVT-RIS / RMSIN's ``test.py`` scores an exact union prediction I/U = 15000/17500; the
   ``original`` protocol takes the union (17500/17500).
2. gRefCOCO: one polygon annotation, the triangle (0, 0), (4.25, 0), (0, 4.25) in a 4x4 image,
   scored at the input size 8. ReLA scales the polygon to (0, 0), (8.5, 0), (0, 8.5) and
   rasterises it there: the pixels whose centre (x + .5, y + .5) lies inside, x + y <= 7,
   1 + 2 + ... + 8 = 36 px. At the original size the triangle holds x + y <= 3, 10 px, which a
   nearest resize to 8 turns into 40 px. The original-size answer (10 px, resized to 40) thus
   scores 36/40 in ReLA's frame.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from btdnet.data import build_referring_dataset, check_referring_dataset
from btdnet.evaluation import prediction_filename, write_prediction
from btdnet.evaluation.prediction_files import score_prediction_files
from tests.referring_fixtures import encode_rle

SIDE = 200


def _square(top: int, left: int, side: int = 100) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), bool)
    mask[top : top + side, left : left + side] = True
    return mask


def _write_rrsisd_overlap(root: Path) -> np.ndarray:
    """One ref, one annotation of two overlapping RLE parts; returns their union."""
    images = root / "images" / "rrsisd" / "JPEGImages"
    images.mkdir(parents=True)
    (root / "rrsisd").mkdir()
    Image.fromarray(np.full((SIDE, SIDE, 3), 80, np.uint8)).save(images / "00001.jpg")
    first, second = _square(0, 0), _square(50, 50)
    annotation = {
        "id": 7, "image_id": 1, "categories_id": 18, "bbox": [0, 0, 149, 149],
        "area": 17500, "segmentation": [encode_rle(first), encode_rle(second)],
    }  # fmt: skip
    instances = {
        "images": [{"id": 1, "file_name": "00001.jpg", "height": SIDE, "width": SIDE}],
        "annotations": [annotation],
        "categories": [{"id": 18, "name": "vehicle"}],
    }
    (root / "rrsisd" / "instances.json").write_text(json.dumps(instances))
    sentence = {"sent_id": 0, "raw": "the vehicle", "sent": "the vehicle", "tokens": ["the"]}
    ref = {
        "ref_id": 3, "ann_id": 7, "image_id": 1, "sent_ids": [0], "split": "test",
        "file_name": "00001.jpg", "category_id": 18, "sentences": [sentence],
    }  # fmt: skip
    (root / "rrsisd" / "refs(unc).p").write_bytes(pickle.dumps([ref]))
    return first | second


@pytest.fixture
def overlap(tmp_path):
    root = tmp_path / "rrsisd_root"
    union = _write_rrsisd_overlap(root)
    predictions = tmp_path / "pred"
    write_prediction(union, predictions / prediction_filename("3-0"))
    dataset = build_referring_dataset("rrsisd", root, "test", None, image_size=SIDE)
    return root, dataset, predictions, union


def test_overlapping_parts_read_as_the_lavt_family_under_lavt(overlap):
    _, dataset, predictions, union = overlap
    assert int(union.sum()) == 17500
    assert int(dataset[0]["mask"].sum()) == 15000  # the 2,500-px overlap is background
    result = score_prediction_files(dataset, predictions, "lavt")
    assert result["oIoU"] == pytest.approx(100 * 15000 / 17500)  # 85.71, LAVT's test.py


def test_overlapping_parts_are_the_union_under_original(overlap):
    _, dataset, predictions, union = overlap
    np.testing.assert_array_equal(dataset.original_mask(0), union)
    result = score_prediction_files(dataset, predictions, "original")
    assert result["oIoU"] == pytest.approx(100.0)


def test_check_reports_overlapping_parts(overlap):
    root = overlap[0]
    report = check_referring_dataset("rrsisd", root, progress=False)
    found = [p for p in report["problems"] if p["kind"] == "overlapping_parts"]
    assert len(found) == 1 and "2 RLE parts overlap on 2500 pixels" in found[0]["detail"]


def _write_grefs_triangle(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.full((4, 4, 3), 60, np.uint8)).save(root / "images" / "t.png")
    triangle = [0.0, 0.0, 4.25, 0.0, 0.0, 4.25]
    instances = {
        "images": [{"id": 1, "file_name": "t.png", "height": 4, "width": 4}],
        "annotations": [
            {"id": 5, "image_id": 1, "category_id": 2, "segmentation": [triangle], "iscrowd": 0}
        ],
        "categories": [{"id": 2, "name": "roof"}],
    }
    sentence = {"sent_id": 0, "raw": "the roof", "sent": "the roof", "tokens": ["the", "roof"]}
    refs = [
        {"ref_id": 1, "image_id": 1, "ann_id": [5], "category_id": [2], "split": "test",
         "sent_ids": [0], "sentences": [sentence], "no_target": False},
    ]  # fmt: skip
    (root / "grefs(unc).json").write_text(json.dumps(refs))
    (root / "instances.json").write_text(json.dumps(instances))


def _triangle(side: int, limit: int) -> np.ndarray:
    rows, cols = np.indices((side, side))
    return rows + cols <= limit


def test_polygons_rasterised_at_the_input_size_as_rela(tmp_path):
    root = tmp_path / "grefs"
    _write_grefs_triangle(root)
    dataset = build_referring_dataset("grefs", root, "test", None, image_size=8)
    np.testing.assert_array_equal(dataset[0]["mask"].numpy() != 0, _triangle(8, 7))  # 36 px
    np.testing.assert_array_equal(dataset.original_mask(0), _triangle(4, 3))  # 10 px
    write_prediction(_triangle(4, 3), tmp_path / "pred" / prediction_filename("1-0"))
    lavt = score_prediction_files(dataset, tmp_path / "pred", "lavt")
    assert lavt["gIoU"] == pytest.approx(90.0) and lavt["cIoU"] == pytest.approx(90.0)
    original = score_prediction_files(dataset, tmp_path / "pred", "original")
    assert original["gIoU"] == pytest.approx(100.0)
