"""LoveDA loader: mask values to train ids, domains, splits, crops and the check."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from closed_set_fixtures import LOVEDA_SIZE, write_loveda_fixture
from PIL import Image

from bicor.data import (
    CLASS_NAMES,
    IGNORE_INDEX,
    ClosedSetDataError,
    build_closed_set_dataset,
    check_closed_set_dataset,
    is_usable,
)
from bicor.data.loveda import loveda_mask_to_ids
from bicor.data.tile_dataset import IMAGENET_MEAN, IMAGENET_STD


def denormalise(pixel_values: torch.Tensor) -> np.ndarray:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (pixel_values * std + mean).mul(255).round().permute(1, 2, 0).numpy().astype(np.uint8)


def test_mask_values_map_to_train_ids_with_0_ignored():
    values = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], dtype=np.uint8)
    assert loveda_mask_to_ids(values, source="m.png").tolist() == [
        [IGNORE_INDEX, 0, 1, 2],
        [3, 4, 5, 6],
    ]
    assert CLASS_NAMES["loveda"] == (
        "background", "building", "road", "water", "barren", "forest", "agriculture",
    )  # fmt: skip
    with pytest.raises(ClosedSetDataError, match=r"^m\.png: LoveDA mask values must be 0\.\.7, "
                       r"found 8 x 1, 200 x 2"):  # fmt: skip
        loveda_mask_to_ids(np.array([[8, 200, 200, 1]], dtype=np.uint8), source="m.png")


def test_eval_items_of_train_and_val_are_whole_images_with_ids(tmp_path):
    written = write_loveda_fixture(tmp_path)
    train = build_closed_set_dataset("loveda", tmp_path, "train", mode="eval")
    assert train.tile_ids == ["1366", "1367", "0", "1"]  # Urban, then Rural, numeric order
    assert not train.missing and train.has_labels
    for index, number in enumerate(train.tile_ids):
        item = train[index]
        assert item["sample_id"] == number
        assert item["pixel_values"].shape == (3, *LOVEDA_SIZE)
        assert item["mask"].dtype == torch.int64
        np.testing.assert_array_equal(item["mask"].numpy(), written[number]["ids"])
        np.testing.assert_array_equal(denormalise(item["pixel_values"]), written[number]["image"])
        zeros = written[number]["values"] == 0
        assert zeros.any() and (item["mask"].numpy()[zeros] == IGNORE_INDEX).all()
        assert item["mask"].numpy()[~zeros].max() <= 6
    val = build_closed_set_dataset("loveda", tmp_path, "val", mode="eval")
    assert val.tile_ids == ["3514", "2522"]
    both = build_closed_set_dataset("loveda", tmp_path, "train+val", mode="eval")
    assert both.tile_ids == ["1366", "1367", "0", "1", "3514", "2522"]


def test_domains_are_selectable(tmp_path):
    write_loveda_fixture(tmp_path)
    rural = build_closed_set_dataset("loveda", tmp_path, "train", mode="eval", domains=("Rural",))
    assert rural.tile_ids == ["0", "1"]
    urban = build_closed_set_dataset("loveda", tmp_path, "val", mode="eval", domains=["Urban"])
    assert urban.tile_ids == ["3514"]
    with pytest.raises(ValueError, match="domains"):
        build_closed_set_dataset("loveda", tmp_path, "train", domains=("Suburban",))


def test_test_split_has_no_masks_and_is_eval_only(tmp_path):
    written = write_loveda_fixture(tmp_path)
    test = build_closed_set_dataset("loveda", tmp_path, "test", mode="eval")
    assert test.tile_ids == ["5167", "4191", "4192"] and not test.has_labels
    item = test[1]
    assert item["sample_id"] == "4191"
    assert (item["mask"] == IGNORE_INDEX).all()
    np.testing.assert_array_equal(denormalise(item["pixel_values"]), written["4191"]["image"])
    with pytest.raises(ValueError, match="no labels"):
        build_closed_set_dataset("loveda", tmp_path, "test", mode="train")
    with pytest.raises(ValueError, match="mixes labelled and unlabelled"):
        build_closed_set_dataset("loveda", tmp_path, "val+test", mode="eval")


def test_missing_mask_and_domain_are_reported_and_skipped(tmp_path):
    write_loveda_fixture(tmp_path)
    (tmp_path / "Train" / "Urban" / "masks_png" / "1367.png").unlink()
    for path in (tmp_path / "Val" / "Rural").rglob("*.png"):
        path.unlink()
    (tmp_path / "Val" / "Rural" / "images_png").rmdir()
    with pytest.warns(UserWarning, match="missing_label"):
        train = build_closed_set_dataset("loveda", tmp_path, "train", mode="eval")
    assert train.tile_ids == ["1366", "0", "1"]
    assert train.missing == [
        {
            "kind": "missing_label",
            "file": str(tmp_path / "Train" / "Urban" / "masks_png" / "1367.png"),
            "detail": "",
        }
    ]
    with pytest.warns(UserWarning, match="missing_folder"):
        val = build_closed_set_dataset("loveda", tmp_path, "val", mode="eval")
    assert val.tile_ids == ["3514"]
    with pytest.raises(ClosedSetDataError, match="no LoveDA train images"):
        build_closed_set_dataset("loveda", tmp_path / "elsewhere", "train")


def test_bad_mask_value_is_an_error_naming_the_file(tmp_path):
    written = write_loveda_fixture(tmp_path)
    path = tmp_path / "Train" / "Rural" / "masks_png" / "0.png"
    values = written["0"]["values"].copy()
    values[3, 4] = 12
    Image.fromarray(values).save(path)
    dataset = build_closed_set_dataset("loveda", tmp_path, "train", mode="eval")
    with pytest.raises(ClosedSetDataError, match=rf"^{re.escape(str(path))}: .*found 12 x 1"):
        dataset[2]


def test_train_crops_cover_each_image_and_follow_the_mask(tmp_path):
    written = write_loveda_fixture(tmp_path)
    dataset = build_closed_set_dataset(
        "loveda", tmp_path, "train", crop_size=32, scales=(1.0,), flips=False, rot90=False, seed=7
    )
    assert len(dataset) == 4 * 2 * 2  # 4 images of 48x56 -> ceil(48/32) * ceil(56/32) crops
    for index in range(len(dataset)):
        item = dataset[index]
        match = re.fullmatch(r"(\d+)@y(\d+)_x(\d+)_w32", item["sample_id"])
        assert match, item["sample_id"]
        number, top, left = match[1], int(match[2]), int(match[3])
        expected = written[number]["ids"][top : top + 32, left : left + 32]
        np.testing.assert_array_equal(item["mask"].numpy(), expected)
    sizes = {tuple(dataset[i]["pixel_values"].shape) for i in range(3)}
    assert sizes == {(3, 32, 32)}
    few = build_closed_set_dataset("loveda", tmp_path, "train", crop_size=32, crops_per_tile=1)
    assert len(few) == 4


def test_options_of_other_datasets_are_refused(tmp_path):
    write_loveda_fixture(tmp_path)
    with pytest.raises(ValueError, match="split_scheme='mmseg' does not apply to LoveDA"):
        build_closed_set_dataset("loveda", tmp_path, "train", split_scheme="mmseg")
    with pytest.raises(ValueError, match="unknown closed-set dataset 'isaid'"):
        build_closed_set_dataset("isaid", tmp_path, "train")


def test_check_counts_classes_and_no_data_pixels(tmp_path):
    written = write_loveda_fixture(tmp_path)
    report = check_closed_set_dataset("loveda", tmp_path)
    assert set(report["splits"]) == {"train", "val", "test"}
    assert is_usable(report) and report["problems"] == []
    train = report["splits"]["train"]
    assert train["samples"] == 4 and train["images"] == 4
    assert train["sizes"] == {"48x56": 4}
    values = np.concatenate([written[n]["values"].ravel() for n in ("1366", "1367", "0", "1")])
    counts = np.bincount(values, minlength=8)
    assert train["class_pixels"] == dict(zip(CLASS_NAMES["loveda"], counts[1:].tolist()))
    assert train["ignore_pixels"] == int(counts[0]) > 0
    test = report["splits"]["test"]
    assert test["samples"] == 3 and test["images"] == 3
    assert sum(test["class_pixels"].values()) == 0

    bad = written["1"]["values"].copy()
    bad[0, 0] = 9
    Image.fromarray(bad).save(tmp_path / "Train" / "Rural" / "masks_png" / "1.png")
    (tmp_path / "Val" / "Urban" / "masks_png" / "3514.png").unlink()
    Image.fromarray(written["1"]["image"]).save(tmp_path / "Val" / "Urban" / "images_png" / "0.png")
    report = check_closed_set_dataset("loveda", tmp_path)
    kinds = sorted((p["kind"], p["file"]) for p in report["problems"])
    assert kinds == [
        ("duplicate_image", str(tmp_path / "Val" / "Urban" / "images_png" / "0.png")),
        ("missing_label", str(tmp_path / "Val" / "Urban" / "masks_png" / "0.png")),
        ("missing_label", str(tmp_path / "Val" / "Urban" / "masks_png" / "3514.png")),
        ("unknown_value", str(tmp_path / "Train" / "Rural" / "masks_png" / "1.png")),
    ]
    assert report["splits"]["train"]["samples"] == 3
    assert not is_usable(report)


def test_a_few_training_steps_run_on_the_fixture(tmp_path):
    write_loveda_fixture(tmp_path)
    train = build_closed_set_dataset("loveda", tmp_path, "train", crop_size=32, seed=0)
    loader = torch.utils.data.DataLoader(train, batch_size=4, shuffle=True)
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, train.num_classes, 3, padding=1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = torch.nn.CrossEntropyLoss(ignore_index=train.ignore_index)
    for step, batch in enumerate(loader):
        assert batch["mask"].shape == (4, 32, 32) and len(batch["sample_id"]) == 4
        if step == 0:
            first = batch
            with torch.no_grad():
                before = criterion(model(first["pixel_values"]), first["mask"])
        loss = criterion(model(batch["pixel_values"]), batch["mask"])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        assert torch.isfinite(loss)
        if step == 2:
            break
    # the pixels and masks go together: three steps lower the loss on the first batch
    with torch.no_grad():
        assert criterion(model(first["pixel_values"]), first["mask"]) < before
