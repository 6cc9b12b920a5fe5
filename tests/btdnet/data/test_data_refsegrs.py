"""RefSegRS loader and dataset on a tiny set in the real layout (TIFFs + phrase files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from referring_fixtures import write_refsegrs_fixture

from btdnet.data import DatasetError, build_referring_dataset, load_refsegrs_records
from btdnet.normalization import IMAGENET_MEAN, IMAGENET_STD

SIZE = 37


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from btdnet.resources import default_text_encoder_path

    return AutoTokenizer.from_pretrained(default_text_encoder_path())


@pytest.fixture
def fixture(tmp_path):
    return write_refsegrs_fixture(tmp_path / "RefSegRS")


def nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reference nearest-neighbour resize (pixel centres), written independently of PIL."""
    rows = np.floor((np.arange(height) + 0.5) * mask.shape[0] / height).astype(int)
    cols = np.floor((np.arange(width) + 0.5) * mask.shape[1] / width).astype(int)
    return mask[rows][:, cols]


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_records_follow_the_phrase_files(fixture, split):
    records, stats = load_refsegrs_records(fixture["root"], split)
    expected = fixture["samples"][split]
    assert [r.sample_id for r in records] == [e["sample_id"] for e in expected]
    assert [r.expression for r in records] == [e["text"] for e in expected]
    assert [r.image_id for r in records] == [e["image_id"] for e in expected]
    for record in records:
        assert (record.category, record.category_id) == ("", -1)
        assert record.image_path == fixture["root"] / "images" / f"{record.image_id}.tif"
        assert record.mask.path == fixture["root"] / "masks" / f"{record.image_id}.tif"
        assert record.image_size == (21, 19)
    assert stats.samples == len(expected)
    assert stats.splits == ["train", "val", "test"]
    assert stats.empty_masks is None and stats.resized_masks == 0


def test_blank_lines_count_in_line_numbers(fixture):
    records, stats = load_refsegrs_records(fixture["root"], "train")
    # line 2 of output_phrase_train.txt is blank; line 3 ends with " \r\n"
    assert [r.sample_id for r in records] == ["1-17", "3-23", "4-23"]
    assert records[1].expression == "car parked on the left"
    assert stats.images == 2


def test_items_value_by_value(fixture, tokenizer):
    dataset = build_referring_dataset("refsegrs", fixture["root"], "train", tokenizer, SIZE)
    item = dataset[0]
    # TIFF is lossless: image 17 is exactly (10, 128, 250) everywhere
    expected = (np.array([10, 128, 250]) / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    got = item["pixel_values"].double().numpy()
    assert got.shape == (3, SIZE, SIZE)
    np.testing.assert_allclose(got, np.broadcast_to(expected[:, None, None], got.shape), atol=1e-6)
    # values 200 and 51 are foreground, 50, 40 and 0 are not
    raw = fixture["raw_masks"]["17"]
    assert set(np.unique(raw).tolist()) == {0, 40, 50, 51, 200}
    np.testing.assert_array_equal(
        item["mask"].numpy(), nearest(raw > 50, SIZE, SIZE).astype(np.int64)
    )
    assert item["mask"].dtype == torch.int64
    assert item["text"] == "the long road" and item["sample_id"] == "1-17"
    assert item["image_id"] == "17" and item["index"] == 0
    assert (item["category"], item["category_id"]) == ("", -1)
    assert item["orig_size"].tolist() == [21, 19]
    reference = tokenizer("the long road", padding="max_length", truncation=True, max_length=20)
    assert item["input_ids"].tolist() == reference["input_ids"]
    assert item["attention_mask"].tolist() == reference["attention_mask"]


def test_original_mask_thresholds_above_50(fixture):
    dataset = build_referring_dataset("refsegrs", fixture["root"], "val", None, SIZE)
    original = dataset.original_mask(0)
    assert original.dtype == bool and original.shape == (21, 19)
    raw = fixture["raw_masks"]["5"]
    np.testing.assert_array_equal(original, raw > 50)
    assert original[12, 1] and not original[16, 10] and not original[0, 0]
    assert original.sum() == 7 * 9 + 3 * 3


def test_mask_without_foreground_is_empty(fixture):
    dataset = build_referring_dataset("refsegrs", fixture["root"], "train", None, SIZE)
    assert dataset[1]["mask"].sum().item() == 0
    assert dataset[2]["image_id"] == "23" and not dataset.original_mask(2).any()


def test_pixels_of_a_random_image(fixture):
    dataset = build_referring_dataset("refsegrs", fixture["root"], "test", None, 19)
    # resizing 21x19 -> 19x19 changes rows; compare against PIL's bilinear on the source
    source = Image.fromarray(fixture["images"]["8"]).resize((19, 19), Image.Resampling.BILINEAR)
    expected = (np.asarray(source) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(
        dataset[0]["pixel_values"].numpy(), expected.transpose(2, 0, 1), atol=1e-5
    )


def test_mask_of_another_size_is_resized_to_its_image(fixture):
    raw = np.zeros((7, 5), dtype=np.uint8)
    raw[1:4, 2:5] = 255
    Image.fromarray(raw).save(fixture["root"] / "masks" / "5.tif")
    _, stats = load_refsegrs_records(fixture["root"], "val")
    assert stats.resized_masks == 1
    assert [p.kind for p in stats.problems] == ["size_mismatch"]
    dataset = build_referring_dataset("refsegrs", fixture["root"], "val", None, SIZE)
    np.testing.assert_array_equal(dataset.original_mask(0), nearest(raw > 50, 21, 19))


def test_missing_mask_names_the_file(fixture):
    missing = fixture["root"] / "masks" / "23.tif"
    missing.unlink()
    with pytest.raises(DatasetError, match="mask of 23 not found") as info:
        load_refsegrs_records(fixture["root"], "train")
    assert str(info.value).startswith(str(missing))


def test_missing_image_names_the_file(fixture):
    missing = fixture["root"] / "images" / "8.tif"
    missing.unlink()
    with pytest.raises(DatasetError, match="image of 8 not found") as info:
        build_referring_dataset("refsegrs", fixture["root"], "test", None)
    assert str(info.value).startswith(str(missing))


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_corrupt_mask_fails_at_getitem(fixture):
    broken = fixture["root"] / "masks" / "8.tif"
    broken.write_bytes(b"II*\x00garbage")
    dataset = build_referring_dataset("refsegrs", fixture["root"], "test", None, SIZE)
    with pytest.raises(DatasetError, match="cannot decode mask") as info:
        dataset[0]
    assert str(info.value).startswith(str(broken))


def test_line_without_expression_is_an_error(fixture):
    path = fixture["root"] / "output_phrase_val.txt"
    path.write_bytes(b"5 the vehicle at the top\n8    \n")
    with pytest.raises(DatasetError, match="line 2 \\(image 8\\): expression is empty") as info:
        load_refsegrs_records(fixture["root"], "val")
    assert str(info.value).startswith(str(path))


def test_unknown_split_lists_the_files_present(fixture):
    with pytest.raises(DatasetError, match="splits present: train, val, test"):
        load_refsegrs_records(fixture["root"], "testA")


def test_root_without_phrase_files(fixture):
    for split in ("train", "val", "test"):
        (fixture["root"] / f"output_phrase_{split}.txt").unlink()
    with pytest.raises(DatasetError, match="no expression file found"):
        load_refsegrs_records(fixture["root"], "train")


def test_path_like_ids_are_rejected(fixture):
    (fixture["root"] / "output_phrase_val.txt").write_text("../../etc/passwd the road\n")
    with pytest.raises(DatasetError, match="is not a file name"):
        load_refsegrs_records(fixture["root"], "val")
