"""LAVT protocol, image and mask of different sizes: the mask is resized once, from its own size.

RRSIS-D has JPEGs of 800x787 whose RLE is 800x800. The peers' loaders (LAVT-RIS, RMSIN) resize
the annotation straight to 480 with nearest; resizing it to the image first moves or drops thin
objects. Here: a 40x40 mask holding a one-row bar at row 6 on a 37x40 image, scored at 80.

Hand computation (nearest, pixel centres: output row i reads source row floor((i + .5) * in / out)):
- mask 40 -> 80 rows: rows 12 and 13 read source row 6 -> the bar covers 2 x 80 = 160 px;
- (old, two resizes) 40 -> 37 rows: output row 5 reads floor(5.5 * 40/37) = 5, row 6 reads
  floor(6.5 * 40/37) = 7 -> source row 6 is dropped and the bar vanishes (0 px).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from referring_fixtures import encode_rle

from btdnet.data import build_referring_dataset
from btdnet.evaluation import score_prediction_files

SIZE = 80


@pytest.fixture
def missized_bar(tmp_path: Path) -> Path:
    """An RRSIS-D set of one test sample: 37x40 JPEG, 40x40 RLE with a bar on row 6."""
    root = tmp_path / "rrsisd"
    (root / "rrsisd").mkdir(parents=True)
    images = root / "images" / "rrsisd" / "JPEGImages"
    images.mkdir(parents=True)
    Image.fromarray(np.full((37, 40, 3), 90, dtype=np.uint8)).save(images / "00001.jpg")
    mask = np.zeros((40, 40), dtype=bool)
    mask[6, :] = True
    instances = {
        "images": [{"id": 1, "file_name": "00001.jpg", "height": 40, "width": 40}],
        "annotations": [
            {
                "id": 7,
                "image_id": 1,
                "bbox": [0, 6, 39, 6],
                "area": 40,
                "categories_id": 4,
                "segmentation": [encode_rle(mask)],
            }
        ],
        "categories": [{"id": 4, "name": "bridge"}],
    }
    ref = {
        "ref_id": 1,
        "ann_id": 7,
        "image_id": 1,
        "sent_ids": [5],
        "split": "test",
        "file_name": "00001.jpg",
        "category_id": 4,
        "sentences": [{"tokens": ["the", "bridge"], "raw": "the bridge", "sent_id": 5}],
    }
    (root / "rrsisd" / "instances.json").write_text(json.dumps(instances), encoding="utf-8")
    with open(root / "rrsisd" / "refs(unc).p", "wb") as handle:
        pickle.dump([ref], handle, protocol=2)
    return root


def test_item_mask_is_resized_once_from_the_mask_size(missized_bar: Path) -> None:
    dataset = build_referring_dataset("rrsisd", missized_bar, "test", None, SIZE)
    item = dataset[0]
    assert item["orig_size"].tolist() == [37, 40]
    mask = item["mask"].numpy()
    assert int(mask.sum()) == 160
    assert np.flatnonzero(mask.any(axis=1)).tolist() == [12, 13]
    # the original-size mask (for the `original` protocol) is still resized to the image,
    # nearest: its 37 rows read source rows floor((i + .5) * 40 / 37), which skip row 6
    assert dataset.original_mask(0).shape == (37, 40) and not dataset.original_mask(0).any()
    # a bar on row 7 instead is read by output row 6 alone (floor(6.5 * 40 / 37) = 7)
    instances_path = missized_bar / "rrsisd" / "instances.json"
    instances = json.loads(instances_path.read_text(encoding="utf-8"))
    moved = np.zeros((40, 40), dtype=bool)
    moved[7, 3:29] = True
    instances["annotations"][0]["segmentation"] = [encode_rle(moved)]
    instances_path.write_text(json.dumps(instances), encoding="utf-8")
    original = build_referring_dataset("rrsisd", missized_bar, "test", None, SIZE).original_mask(0)
    expected = np.zeros((37, 40), dtype=bool)
    expected[6, 3:29] = True
    np.testing.assert_array_equal(original, expected)


def test_prediction_files_are_scored_against_the_single_resize(
    missized_bar: Path, tmp_path: Path
) -> None:
    # A prediction at the image's size (37x40) with rows 5-6 set: 37 -> 80 rows maps output
    # rows 11, 12 to source 5 and 13, 14 to source 6 (floor((i + .5) * 37/80)), so 4 x 80 =
    # 320 px at 80, of which the ground truth's 160 (rows 12-13): IoU = 160 / 320 = 50 %.
    # With the old double resize the ground truth was empty and the IoU 0.
    folder = tmp_path / "predictions"
    folder.mkdir()
    pred = np.zeros((37, 40), dtype=np.uint8)
    pred[5:7, :] = 255
    Image.fromarray(pred, mode="L").save(folder / "1-5.png")
    dataset = build_referring_dataset("rrsisd", missized_bar, "test", None, SIZE)
    results = score_prediction_files(dataset, folder, "lavt")
    assert results["samples"] == 1
    assert results["oIoU"] == pytest.approx(50.0)
    assert results["mIoU"] == pytest.approx(50.0)
