"""Colour prediction files in each dataset's palette and the LoveDA submission archive."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from closed_set_fixtures import ISPRS_COLOURS
from PIL import Image

from bicor.data import (
    ISPRS_PALETTE,
    colour_to_ids,
    write_colour_prediction,
    write_loveda_submission,
)
from bicor.data.image_io import read_rgb

LOVEDA_COLOURS = np.array(
    [
        [255, 255, 255],
        [255, 0, 0],
        [255, 255, 0],
        [0, 0, 255],
        [159, 129, 183],
        [0, 255, 0],
        [255, 195, 128],
    ],
    dtype=np.uint8,
)


def test_png_is_indexed_with_the_loveda_palette(tmp_path):
    ids = np.array([[0, 1, 2, 3], [4, 5, 6, 255]], dtype=np.int64)
    path = write_colour_prediction(ids, tmp_path / "out" / "4191.png", "loveda")
    with Image.open(path) as image:
        assert image.mode == "P"
        np.testing.assert_array_equal(np.asarray(image), ids.astype(np.uint8))  # ids read back
        rgb = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(rgb[0], LOVEDA_COLOURS[:4])
    np.testing.assert_array_equal(rgb[1, :3], LOVEDA_COLOURS[4:])
    assert rgb[1, 3].tolist() == [0, 0, 0]  # ignore is drawn black


def test_tiff_is_rgb_in_the_isprs_colours_and_reads_back_as_ids(tmp_path):
    ids = np.tile(np.arange(6), (3, 2))  # (3, 12)
    ids[2, 5] = 255
    path = write_colour_prediction(torch.from_numpy(ids), tmp_path / "area2.tif", "vaihingen")
    rgb = read_rgb(path)
    expected = ISPRS_COLOURS[np.where(ids == 255, 0, ids)]
    expected[2, 5] = (0, 0, 0)
    np.testing.assert_array_equal(rgb, expected)
    back = colour_to_ids(rgb, ISPRS_PALETTE, source=str(path), boundary_is_ignore=True)
    np.testing.assert_array_equal(back, ids)
    png = write_colour_prediction(ids, tmp_path / "area2.png", "potsdam")
    with Image.open(png) as image:
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), expected)


def test_colour_prediction_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"class ids must be 0\.\.5 or 255, found \[6\]"):
        write_colour_prediction(np.full((2, 2), 6), tmp_path / "a.png", "potsdam")
    with pytest.raises(ValueError, match="2-D"):
        write_colour_prediction(np.zeros((1, 2, 2), dtype=int), tmp_path / "a.png", "potsdam")
    with pytest.raises(ValueError, match="integer class ids"):
        write_colour_prediction(np.zeros((2, 2)), tmp_path / "a.png", "potsdam")
    with pytest.raises(ValueError, match=r"unsupported prediction format '\.jpg'"):
        write_colour_prediction(np.zeros((2, 2), dtype=int), tmp_path / "a.jpg", "potsdam")
    with pytest.raises(ValueError, match="unknown closed-set dataset"):
        write_colour_prediction(np.zeros((2, 2), dtype=int), tmp_path / "a.png", "isaid")


def test_loveda_submission_is_flat_pngs_with_values_0_to_6(tmp_path):
    rng = np.random.default_rng(0)
    predictions = {
        "5167": rng.integers(0, 7, (6, 5)),
        "Test/Rural/images_png/4191.png": torch.from_numpy(rng.integers(0, 7, (6, 5))),
        "4192.png": np.full((6, 5), 6, dtype=np.uint8),
    }
    path = write_loveda_submission(predictions, tmp_path / "sub" / "submission.zip")
    assert path == tmp_path / "sub" / "submission.zip"
    assert sorted(p.name for p in path.parent.iterdir()) == ["submission.zip"]
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["4191.png", "4192.png", "5167.png"]
        for name, key in (
            ("5167.png", "5167"),
            ("4191.png", "Test/Rural/images_png/4191.png"),
            ("4192.png", "4192.png"),
        ):
            with Image.open(io.BytesIO(archive.read(name))) as image:
                assert image.format == "PNG" and image.mode == "L"
                values = np.asarray(image)
            assert values.dtype == np.uint8
            np.testing.assert_array_equal(values, np.asarray(predictions[key]))
            assert values.max() <= 6


def test_loveda_submission_refuses_ignore_duplicates_and_nothing(tmp_path):
    target = tmp_path / "submission.zip"
    with pytest.raises(ValueError, match=r"4191\.png: class ids must be 0\.\.6, found \[255\]"):
        write_loveda_submission({"4191": np.full((2, 2), 255)}, target)
    with pytest.raises(ValueError, match=r"two predictions are named 4191\.png"):
        write_loveda_submission(
            {"4191": np.zeros((2, 2), int), "a/4191.png": np.zeros((2, 2), int)}, target
        )
    with pytest.raises(ValueError, match="no predictions"):
        write_loveda_submission({}, target)
    assert not target.exists() and list(tmp_path.iterdir()) == []
