"""Scene outputs tell "not looked at" from "not the target", and records publish no absolute path.

Crafted scene, 200 x 250: rows 0-99 are nodata (value 0), rows 100-199 are dark in columns
0-124 and bright in columns 125-249; the model marks exactly the bright pixels. A GIS reading the
mask (or the probability) with its nodata then counts, by hand: 25,000 nodata pixels, 12,500
target pixels, 12,500 background pixels. Before, the nodata rows read as 25,000 more background.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from btdnet.predict.predictor import Predictor
from tests.btdnet.predict.test_predict_scene import BRIGHT, DARK, BrightModel, tiny, write_tiff

rasterio = pytest.importorskip("rasterio")

__all__ = ["tiny"]  # the module fixture, shared


def _read_masked(path: str) -> np.ma.MaskedArray:
    with rasterio.open(path) as dataset:
        return dataset.read(1, masked=True)  # honours the per-dataset mask, as a GIS does


@pytest.fixture
def scene(tmp_path: Path, tiny) -> tuple[Path, dict]:
    bands = np.full((3, 200, 250), DARK, dtype=np.uint8)
    bands[:, 100:, 125:] = BRIGHT
    bands[:, :100] = 0
    path = write_tiff(tmp_path / "scene.tif", bands, nodata=0)
    result = Predictor(BrightModel(tiny), device="cpu").predict_scene(
        path, "roof", tmp_path / "out", overlap=16, save_probability=True
    )
    return path, result.record


def test_nodata_pixels_are_nodata_in_the_mask_and_probability(scene) -> None:
    _, record = scene
    mask = _read_masked(record["mask_geotiff"])
    assert int(mask.mask.sum()) == 25000 and mask.mask[:100].all() and not mask.mask[100:].any()
    valid = mask.compressed()
    assert int((valid == 255).sum()) == 12500 and int((valid == 0).sum()) == 12500
    assert (mask.data[:100] == 0).all()  # the values stay 0/255 for readers without the mask
    assert not list(Path(record["mask_geotiff"]).parent.glob("*.msk"))  # inside the file
    probability = _read_masked(record["probability_geotiff"])
    np.testing.assert_array_equal(probability.mask, mask.mask)
    assert (probability.compressed()[valid == 255] == 255).all()


def test_record_keeps_a_relative_path_and_a_fingerprint(scene, tmp_path) -> None:
    path, record = scene
    assert "image_resolved" not in record
    assert record["image_relative"] == os.path.join("..", "scene.tif")
    assert (tmp_path / "out" / record["image_relative"]).resolve() == path.resolve()
    digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    assert record["image_blake2b"] == digest
    out = str(tmp_path / "out")
    published = [str(v) for k, v in record.items() if k != "image" and not str(v).startswith(out)]
    assert not any(str(tmp_path) in value for value in published)  # outputs: where asked
