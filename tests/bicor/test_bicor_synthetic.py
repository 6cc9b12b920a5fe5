"""The synthetic closed-set set: determinism, classes, on-disk layout, dataset items."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from bicor.data.synthetic_seg import (
    CLASSES,
    SyntheticSegDataset,
    generate_sample,
    write_synthetic_seg,
)


def test_generation_is_deterministic_and_varied():
    a_img, a_mask = generate_sample(3, "train", 5, 64)
    b_img, b_mask = generate_sample(3, "train", 5, 64)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    c_img, _ = generate_sample(3, "train", 6, 64)
    assert not np.array_equal(a_img, c_img)
    assert a_img.shape == (64, 64, 3) and a_img.dtype == np.uint8
    assert a_mask.shape == (64, 64) and a_mask.dtype == np.uint8


def test_every_class_appears_and_ids_are_valid():
    seen = set()
    for index in range(30):
        _, mask = generate_sample(0, "train", index, 64)
        values = set(np.unique(mask).tolist())
        assert values <= {*range(len(CLASSES)), 255}
        seen |= values
    assert set(range(len(CLASSES))) <= seen  # all six land-cover classes
    assert 255 in seen  # some images carry a no-data strip


def test_layout_and_dataset(tmp_path):
    root = write_synthetic_seg(tmp_path / "syn", train=3, val=2, size=48, seed=1)
    meta = json.loads((root / "classes.json").read_text())
    assert meta["classes"] == list(CLASSES) and meta["ignore_index"] == 255
    mask_file = root / "val" / "masks" / "val_00001.png"
    assert Image.open(mask_file).mode == "L"
    stored = np.asarray(Image.open(mask_file))
    assert np.array_equal(stored, generate_sample(1, "val", 1, 48)[1])

    dataset = SyntheticSegDataset(root, "train", image_size=32)
    assert len(dataset) == 3 and dataset.num_classes == 6
    item = dataset[0]
    assert item["sample_id"] == "train_00000"
    assert item["pixel_values"].shape == (3, 32, 32) and item["pixel_values"].dtype == torch.float32
    assert item["mask"].shape == (32, 32) and item["mask"].dtype == torch.int64
    # ImageNet normalisation: a black pixel maps to -mean/std
    black = SyntheticSegDataset(root, "train")
    image, _ = black.load(0)
    expected = (image[0, 0, 0] / 255.0 - 0.485) / 0.229
    assert black[0]["pixel_values"][0, 0, 0].item() == pytest.approx(expected, abs=1e-5)


def test_transform_is_applied(tmp_path):
    root = write_synthetic_seg(tmp_path / "syn", train=1, val=1, size=32)

    def flip(image, mask):
        return image[:, ::-1], mask[:, ::-1]

    plain = SyntheticSegDataset(root, "train")[0]
    flipped = SyntheticSegDataset(root, "train", transform=flip)[0]
    assert torch.equal(flipped["mask"], plain["mask"].flip(-1))


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="make_synthetic_seg"):
        SyntheticSegDataset(tmp_path, "train")
    write_synthetic_seg(tmp_path / "s", train=1, val=1, size=32)
    with pytest.raises(ValueError, match="unknown split"):
        SyntheticSegDataset(tmp_path / "s", "test")
