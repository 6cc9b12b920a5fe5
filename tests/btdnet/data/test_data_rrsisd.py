"""RRSIS-D loader and dataset on a tiny set in the real layout (refs(unc).p + instances.json)."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
from referring_fixtures import write_rrsisd_fixture
from torch.utils.data import default_collate

from btdnet.data import (
    DatasetError,
    ReferringRecord,
    RleMask,
    UnsafePickleError,
    build_referring_dataset,
    load_rrsisd_records,
)
from btdnet.normalization import IMAGENET_MEAN, IMAGENET_STD

SIZE = 37


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from btdnet.resources import default_text_encoder_path

    return AutoTokenizer.from_pretrained(default_text_encoder_path())


@pytest.fixture
def fixture(tmp_path):
    return write_rrsisd_fixture(tmp_path / "rrsisd_root")


def nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reference nearest-neighbour resize (pixel centres), written independently of PIL."""
    rows = np.floor((np.arange(height) + 0.5) * mask.shape[0] / height).astype(int)
    cols = np.floor((np.arange(width) + 0.5) * mask.shape[1] / width).astype(int)
    return mask[rows][:, cols]


def test_fixture_uses_the_real_keys(fixture):
    instances = json.loads(fixture["instances_path"].read_text())
    annotation = instances["annotations"][0]
    assert "categories_id" in annotation and "category_id" not in annotation
    assert isinstance(annotation["segmentation"], list)
    assert isinstance(annotation["segmentation"][0]["counts"], str)


@pytest.mark.parametrize(
    ("split", "ids"),
    [("train", ["1-10", "1-11", "2-12"]), ("val", ["3-13"]), ("test", ["4-14"])],
)
def test_records_per_split(fixture, split, ids):
    records, stats = load_rrsisd_records(fixture["root"], split)
    assert [r.sample_id for r in records] == ids
    for record, expected in zip(records, fixture["samples"][split], strict=True):
        assert isinstance(record, ReferringRecord)
        assert record.sample_id == expected["sample_id"]
        assert record.expression == expected["text"]
        assert record.category == expected["category"]
        assert record.category_id == expected["category_id"]
        assert record.image_id == expected["image_id"]
        assert record.image_path == fixture["image_dir"] / expected["file_name"]
        assert record.split == split
    assert stats.samples == len(ids)
    assert stats.splits == ["train", "val", "test"]


def test_stats_count_empty_and_resized_masks(fixture):
    records, stats = load_rrsisd_records(fixture["root"], None)
    assert len(records) == 5 and stats.images == 3
    assert stats.empty_masks == 1
    assert stats.resized_masks == 1
    kinds = sorted((p.kind, p.file) for p in stats.problems)
    assert kinds == [
        ("empty_mask", str(fixture["instances_path"])),
        ("size_mismatch", str(fixture["image_dir"] / "00002.jpg")),
    ]
    assert stats.summary() == (
        "rrsisd all splits: 5 samples, 3 images, 1 empty masks, "
        "1 masks of another size than their image"
    )
    _, no_sizes = load_rrsisd_records(fixture["root"], None, read_image_sizes=False)
    assert no_sizes.resized_masks is None and no_sizes.empty_masks == 1


def test_text_is_stripped_and_sentences_are_separate_samples(fixture):
    records, _ = load_rrsisd_records(fixture["root"], "train")
    assert records[0].expression == "The grey vehicle on the LEFT"
    assert records[1].expression == "vehicle near the top"
    assert records[0].mask is records[1].mask  # one annotation, decoded lazily, shared


def test_items_value_by_value(fixture, tokenizer):
    dataset = build_referring_dataset("rrsisd", fixture["root"], "train", tokenizer, SIZE, 20)
    assert len(dataset) == 3
    item = dataset[1]
    assert set(item) == {
        "pixel_values", "mask", "input_ids", "attention_mask", "text", "category",
        "category_id", "sample_id", "image_id", "orig_size", "index", "present",
    }  # fmt: skip
    assert item["present"] == 1  # RRSIS-D expressions all refer to an object
    assert item["pixel_values"].dtype == torch.float32
    assert item["pixel_values"].shape == (3, SIZE, SIZE)
    # image 1 is one uniform colour, so bilinear resizing keeps the decoded JPEG value
    pixel = fixture["images"]["00001.jpg"][0, 0].astype(np.float64) / 255.0
    expected = (pixel - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    got = item["pixel_values"].double().numpy()
    np.testing.assert_allclose(got, np.broadcast_to(expected[:, None, None], got.shape), atol=1e-5)
    assert item["mask"].dtype == torch.int64 and item["mask"].shape == (SIZE, SIZE)
    np.testing.assert_array_equal(
        item["mask"].numpy(), nearest(fixture["masks"][100], SIZE, SIZE).astype(np.int64)
    )
    assert item["text"] == "vehicle near the top"
    assert item["category"] == "vehicle" and item["category_id"] == 18
    assert item["sample_id"] == "1-11" and item["image_id"] == "1" and item["index"] == 1
    assert item["orig_size"].tolist() == [33, 33] and item["orig_size"].dtype == torch.int64
    reference = tokenizer(
        "vehicle near the top", padding="max_length", truncation=True, max_length=20
    )
    assert item["input_ids"].tolist() == reference["input_ids"]
    assert item["attention_mask"].tolist() == reference["attention_mask"]
    assert item["input_ids"].dtype == torch.int64 and item["input_ids"].shape == (20,)
    assert item["attention_mask"].sum().item() == 6  # [CLS] vehicle near the top [SEP]


def test_truncation_to_max_tokens(fixture, tokenizer):
    dataset = build_referring_dataset("rrsisd", fixture["root"], "test", tokenizer, SIZE, 5)
    item = dataset[0]
    reference = tokenizer("the windmill in the lower right corner", truncation=True, max_length=5)[
        "input_ids"
    ]
    assert item["input_ids"].tolist() == reference
    assert reference[-1] == tokenizer.sep_token_id
    assert item["attention_mask"].tolist() == [1, 1, 1, 1, 1]


def test_missized_image_gets_its_mask_resized(fixture):
    dataset = build_referring_dataset("rrsisd", fixture["root"], "train", None, SIZE)
    index = [r.sample_id for r in dataset.records].index("2-12")
    item = dataset[index]
    assert item["orig_size"].tolist() == [33, 35]
    original = dataset.original_mask(index)
    assert original.dtype == bool and original.shape == (33, 35)
    np.testing.assert_array_equal(original, nearest(fixture["masks"][101], 33, 35))
    # LAVT protocol: the 33x33 mask goes straight to SIZE (never through the 33x35 image size)
    expected = nearest(fixture["masks"][101], SIZE, SIZE)
    np.testing.assert_array_equal(item["mask"].numpy(), expected.astype(np.int64))
    assert "input_ids" not in item and "attention_mask" not in item


def test_empty_mask_is_kept(fixture):
    dataset = build_referring_dataset("rrsisd", fixture["root"], "val", None, SIZE)
    assert dataset.stats.empty_masks == 1
    item = dataset[0]
    assert item["mask"].sum().item() == 0
    assert item["category"] == "airplane" and item["category_id"] == 0
    assert not dataset.original_mask(0).any()


def test_original_mask_matches_the_rle(fixture):
    dataset = build_referring_dataset("rrsisd", fixture["root"], "test", None, SIZE)
    np.testing.assert_array_equal(dataset.original_mask(0), fixture["masks"][103])


def test_default_collate_batches_items(fixture, tokenizer):
    dataset = build_referring_dataset("rrsisd", fixture["root"], "train", tokenizer, SIZE)
    batch = default_collate([dataset[0], dataset[2]])
    assert batch["pixel_values"].shape == (2, 3, SIZE, SIZE)
    assert batch["mask"].shape == (2, SIZE, SIZE)
    assert batch["input_ids"].shape == (2, 20)
    assert batch["sample_id"] == ["1-10", "2-12"]
    assert batch["orig_size"].tolist() == [[33, 33], [33, 35]]
    for row, index in enumerate((0, 2)):  # each item stacked in order, values unchanged
        item = dataset[index]
        for key in ("pixel_values", "mask", "input_ids", "attention_mask"):
            assert torch.equal(batch[key][row], item[key]), (key, index)


def test_category_names_fall_back(fixture):
    instances = fixture["instances"]
    instances["categories"] = []
    for annotation in instances["annotations"]:
        del annotation["categories_id"]
    fixture["instances_path"].write_text(json.dumps(instances))
    records, _ = load_rrsisd_records(fixture["root"], "test")
    assert (records[0].category, records[0].category_id) == ("", 19)  # the ref's category_id


def test_unknown_split_lists_the_splits_present(fixture):
    with pytest.raises(DatasetError) as info:
        load_rrsisd_records(fixture["root"], "testA")
    message = str(info.value)
    assert message.startswith(str(fixture["refs_path"]))
    assert "'testA'" in message and "splits present: train, val, test" in message


@pytest.mark.parametrize("name", ["refs_path", "instances_path"])
def test_missing_index_file(fixture, name):
    fixture[name].unlink()
    with pytest.raises(DatasetError, match="file not found") as info:
        build_referring_dataset("rrsisd", fixture["root"], "train", None)
    assert str(info.value).startswith(str(fixture[name]))


def test_root_one_level_too_deep_gets_a_hint(fixture):
    with pytest.raises(DatasetError, match="pass its parent folder"):
        load_rrsisd_records(fixture["root"] / "rrsisd", "train")


def test_missing_image_fails_at_index_time(fixture):
    missing = fixture["image_dir"] / "00002.jpg"
    missing.unlink()
    with pytest.raises(DatasetError, match="not found") as info:
        load_rrsisd_records(fixture["root"], "train")
    assert str(info.value).startswith(str(missing))
    records, _ = load_rrsisd_records(fixture["root"], "val")  # other splits still load
    assert len(records) == 1


def test_corrupt_image_fails_at_getitem(fixture):
    broken = fixture["image_dir"] / "00003.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    dataset = build_referring_dataset("rrsisd", fixture["root"], "val", None, SIZE)
    with pytest.raises(DatasetError, match="cannot decode image") as info:
        dataset[0]
    assert str(info.value).startswith(str(broken))


def test_ref_pointing_to_unknown_annotation(fixture):
    refs = fixture["refs"]
    refs[2]["ann_id"] = 999
    fixture["refs_path"].write_bytes(pickle.dumps(refs, protocol=2))
    with pytest.raises(DatasetError, match="ref 3 points to annotation 999") as info:
        load_rrsisd_records(fixture["root"], "val")
    assert str(info.value).startswith(str(fixture["instances_path"]))


def test_empty_expression_is_an_error(fixture):
    refs = fixture["refs"]
    refs[1]["sentences"][0].update(raw="  \n", sent="", tokens=[])
    fixture["refs_path"].write_bytes(pickle.dumps(refs, protocol=2))
    with pytest.raises(DatasetError, match="sample 2-12: expression is empty after stripping"):
        load_rrsisd_records(fixture["root"], "train")


def test_malicious_refs_pickle_is_refused(fixture, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    fixture["refs_path"].write_bytes(pickle.dumps([Payload()], protocol=2))
    with pytest.raises(UnsafePickleError, match="system") as info:
        build_referring_dataset("rrsisd", fixture["root"], "train", None)
    assert str(info.value).startswith(str(fixture["refs_path"]))
    assert not marker.exists()


def test_malformed_rle_counts_raise_instead_of_returning_garbage(tmp_path):
    mask = RleMask(height=5, width=7, counts=b"", file=str(tmp_path / "i.json"), label="ann 3")
    with pytest.raises(DatasetError, match="ann 3: RLE counts do not describe a 5x7 mask"):
        mask.decode()
    good = RleMask.from_segmentation(
        [{"size": [5, 7], "counts": [3, 4, 28]}], tmp_path / "i.json", "ann 4"
    )
    expected = np.zeros(35, dtype=bool)
    expected[3:7] = True
    np.testing.assert_array_equal(good.decode(), expected.reshape(7, 5).T)  # column-major runs


def test_unknown_dataset_name(fixture):
    with pytest.raises(ValueError, match="known: grefs, refsegrs, rrsisd"):
        build_referring_dataset("refcoco", fixture["root"], "train", None)
