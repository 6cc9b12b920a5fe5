"""Tiny RRSIS-D and RefSegRS data sets in their real on-disk layouts, for tests.

Both writers return what they wrote (the index contents, the decoded pixels of every image and
the expected bool masks) so that tests can check loaders value by value.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

RRSISD_CATEGORIES = [
    "airplane",
    "airport",
    "baseballfield",
    "basketballcourt",
    "bridge",
    "chimney",
    "dam",
    "Expressway-Service-area",
    "Expressway-toll-station",
    "golffield",
    "groundtrackfield",
    "harbor",
    "overpass",
    "ship",
    "stadium",
    "storagetank",
    "tenniscourt",
    "trainstation",
    "vehicle",
    "windmill",
]


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Bool (H, W) mask -> compressed COCO RLE with ``counts`` as str (as in instances.json)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _box_mask(height: int, width: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def _write_jpeg(path: Path, array: np.ndarray) -> np.ndarray:
    """Write an RGB JPEG and return its pixels as decoded by PIL (JPEG is lossy)."""
    Image.fromarray(array).save(path, quality=95)
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).copy()


def write_rrsisd_fixture(root: str | Path) -> dict[str, Any]:
    """Write a 3-image, 4-ref, 5-sentence RRSIS-D set under ``root``.

    - image 1 (00001.jpg, 33x33, uniform colour): ref 1 (train, vehicle, two sentences with
      stray whitespace) and ref 4 (test, windmill);
    - image 2 (00002.jpg, 33 rows x 35 columns) while its RLE is 33x33: ref 2 (train, ship);
    - image 3 (00003.jpg, 33x33) with an empty mask: ref 3 (val, airplane).
    """
    root = Path(root)
    index_dir = root / "rrsisd"
    image_dir = root / "images" / "rrsisd" / "JPEGImages"
    index_dir.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(7)
    uniform = np.zeros((33, 33, 3), dtype=np.uint8)
    uniform[:] = (30, 120, 220)
    arrays = {
        1: uniform,
        2: rng.integers(0, 256, (33, 35, 3), dtype=np.uint8),
        3: rng.integers(0, 256, (33, 33, 3), dtype=np.uint8),
    }
    images = {}
    image_entries = []
    for image_id, array in arrays.items():
        file_name = f"{image_id:05d}.jpg"
        images[file_name] = _write_jpeg(image_dir / file_name, array)
        image_entries.append({"id": image_id, "file_name": file_name, "height": 33, "width": 33})

    masks = {
        100: _box_mask(33, 33, (4, 15), (6, 21)),
        101: _box_mask(33, 33, (10, 31), (0, 17)),
        102: np.zeros((33, 33), dtype=bool),
        103: _box_mask(33, 33, (20, 33), (25, 33)),
    }
    ann_meta = {100: (1, 18), 101: (2, 13), 102: (3, 0), 103: (1, 19)}
    annotations = []
    for ann_id, mask in masks.items():
        image_id, category_id = ann_meta[ann_id]
        ys, xs = np.nonzero(mask)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] if len(ys) else [0] * 4
        annotations.append(
            {
                "id": ann_id,
                "image_id": image_id,
                "bbox": bbox,
                "area": int(mask.sum()),
                "categories_id": category_id,
                "segmentation": [encode_rle(mask)],
            }
        )
    instances = {
        "images": image_entries,
        "annotations": annotations,
        "categories": [{"id": i, "name": name} for i, name in enumerate(RRSISD_CATEGORIES)],
    }

    def sentence(sent_id: int, raw: str) -> dict[str, Any]:
        tokens = raw.lower().split()
        return {"tokens": tokens, "raw": raw, "sent_id": sent_id, "sent": " ".join(tokens)}

    refs = [
        {
            "ref_id": 1,
            "ann_id": 100,
            "image_id": 1,
            "sent_ids": [10, 11],
            "split": "train",
            "file_name": "00001.jpg",
            "category_id": 18,
            "sentences": [
                sentence(10, "The grey vehicle on the LEFT  "),
                sentence(11, "  vehicle near the top\n"),
            ],
        },
        {
            "ref_id": 2,
            "ann_id": 101,
            "image_id": 2,
            "sent_ids": [12],
            "split": "train",
            "file_name": "00002.jpg",
            "category_id": 13,
            "sentences": [sentence(12, "a ship at the bottom left")],
        },
        {
            "ref_id": 3,
            "ann_id": 102,
            "image_id": 3,
            "sent_ids": [13],
            "split": "val",
            "file_name": "00003.jpg",
            "category_id": 0,
            "sentences": [sentence(13, "the small airplane")],
        },
        {
            "ref_id": 4,
            "ann_id": 103,
            "image_id": 1,
            "sent_ids": [14],
            "split": "test",
            "file_name": "00001.jpg",
            "category_id": 19,
            "sentences": [sentence(14, "the windmill in the lower right corner")],
        },
    ]
    (index_dir / "instances.json").write_text(json.dumps(instances), encoding="utf-8")
    with open(index_dir / "refs(unc).p", "wb") as handle:
        pickle.dump(refs, handle, protocol=2)

    def expected(ref: dict[str, Any], position: int) -> dict[str, Any]:
        ann_id = ref["ann_id"]
        category_id = ann_meta[ann_id][1]
        return {
            "sample_id": f"{ref['ref_id']}-{ref['sentences'][position]['sent_id']}",
            "text": ref["sentences"][position]["raw"].strip(),
            "category": RRSISD_CATEGORIES[category_id],
            "category_id": category_id,
            "image_id": str(ref["image_id"]),
            "file_name": ref["file_name"],
            "ann_id": ann_id,
        }

    samples: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    for ref in refs:
        for position in range(len(ref["sentences"])):
            samples[ref["split"]].append(expected(ref, position))
    return {
        "root": root,
        "refs_path": index_dir / "refs(unc).p",
        "instances_path": index_dir / "instances.json",
        "image_dir": image_dir,
        "refs": refs,
        "instances": instances,
        "images": images,
        "masks": masks,
        "samples": samples,
    }


def write_refsegrs_fixture(root: str | Path) -> dict[str, Any]:
    """Write a 4-image RefSegRS set under ``root`` (images 21 rows x 19 columns).

    Masks hold the values 0, 40, 50, 51 and 200; foreground is value > 50. Image "23" has no
    value above 50 (an empty mask). Split files have trailing spaces, a blank line and CRLF.
    """
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    height, width = 21, 19
    images: dict[str, np.ndarray] = {}
    raw_masks: dict[str, np.ndarray] = {}
    for image_id in ("17", "23", "5", "8"):
        if image_id == "17":
            array = np.zeros((height, width, 3), dtype=np.uint8)
            array[:] = (10, 128, 250)
        else:
            array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        raw = np.zeros((height, width), dtype=np.uint8)
        if image_id != "23":
            raw[2:9, 3:12] = 200
            raw[12:15, 1:4] = 51
            raw[16:19, 10:18] = 50
        raw[0:2, :] = 40
        Image.fromarray(array).save(root / "images" / f"{image_id}.tif")
        Image.fromarray(raw).save(root / "masks" / f"{image_id}.tif")
        images[image_id] = array
        raw_masks[image_id] = raw
    split_text = {
        "train": b"17 the long road   \n\n23 car parked on the left \r\n23 the white van\n",
        "val": b"5 the vehicle at the top\n",
        "test": b"8 road marking near the bottom  ",
    }
    for split, text in split_text.items():
        (root / f"output_phrase_{split}.txt").write_bytes(text)
    samples = {
        "train": [
            {"sample_id": "1-17", "image_id": "17", "text": "the long road"},
            {"sample_id": "3-23", "image_id": "23", "text": "car parked on the left"},
            {"sample_id": "4-23", "image_id": "23", "text": "the white van"},
        ],
        "val": [{"sample_id": "1-5", "image_id": "5", "text": "the vehicle at the top"}],
        "test": [{"sample_id": "1-8", "image_id": "8", "text": "road marking near the bottom"}],
    }
    return {
        "root": root,
        "images": images,
        "raw_masks": raw_masks,
        "masks": {image_id: raw > 50 for image_id, raw in raw_masks.items()},
        "samples": samples,
    }
