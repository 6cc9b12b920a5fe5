"""The authors' training augmentations: SmartCrop, rot90 probability and GeoSeg's mosaic."""

import numpy as np
import pytest

from bicor.data.augment import CropAugment, balanced, flip_rotate, mosaic_pair


def test_balanced_is_smartcrop_v1s_test():
    mask = np.zeros((4, 4), dtype=np.uint8)
    assert not balanced(mask, 0, 0, 4, 0.75, 255)  # one class only
    mask[:, 3] = 1  # 12 vs 4 pixels: 0.75 is not < 0.75
    assert not balanced(mask, 0, 0, 4, 0.75, 255)
    mask[0, 2] = 1  # 11 vs 5
    assert balanced(mask, 0, 0, 4, 0.75, 255)
    mask[:, :2] = 255  # ignored pixels do not count: 3 vs 5 left
    assert balanced(mask, 0, 0, 4, 0.75, 255)
    assert not balanced(mask, -2, -2, 4, 0.75, 255)  # only ignore and class 0 inside


def test_smart_crop_redraws_windows_dominated_by_one_class():
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[:8, :8] = 1  # only windows at the top-left corner hold two classes
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    plain = CropAugment(8, (1.0,), False, False)
    smart = CropAugment(8, (1.0,), False, False, smart_crop_ratio=0.75)
    balanced_plain = balanced_smart = 0
    for seed in range(200):
        _, m, _ = plain(image, mask, np.random.default_rng(seed))
        balanced_plain += len(np.unique(m)) > 1
        _, m, _ = smart(image, mask, np.random.default_rng(seed))
        balanced_smart += len(np.unique(m)) > 1
    assert balanced_smart > 2 * balanced_plain


def test_rot90_probability():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1).repeat(3, axis=2)
    rotated = 0
    for seed in range(400):
        out, _ = flip_rotate(image, None, np.random.default_rng(seed), flips=False, rot90_p=0.25)
        rotated += not np.array_equal(out, image)
    # p 0.25 and k uniform in 0..3: rotated by a non-zero k with probability 0.1875
    assert 40 < rotated < 110
    with pytest.raises(ValueError, match="rot90_p"):
        CropAugment(8, rot90_p=1.5)


def test_mosaic_takes_one_quadrant_from_each_tile():
    tiles = [
        (np.full((40, 50, 3), 10 * (i + 1), dtype=np.uint8), np.full((40, 50), i, np.uint8))
        for i in range(4)
    ]
    image, mask = mosaic_pair(tiles, 32, np.random.default_rng(3))
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
    ys, xs = np.nonzero(mask == 3)
    split_y, split_x = ys.min(), xs.min()
    assert 8 <= split_y <= 24 and 8 <= split_x <= 24
    assert (mask[:split_y, :split_x] == 0).all() and (mask[:split_y, split_x:] == 1).all()
    assert (mask[split_y:, :split_x] == 2).all() and (image[split_y:, split_x:] == 40).all()
    with pytest.raises(ValueError, match="four tiles"):
        mosaic_pair(tiles[:3], 32, np.random.default_rng(0))


def test_dataset_assembles_mosaics_from_four_tiles(tmp_path):
    from bicor.data import build_closed_set_dataset
    from tests.closed_set_fixtures import write_loveda_fixture

    write_loveda_fixture(tmp_path)
    options = {"mode": "train", "crop_size": 16, "scales": (1.0,), "seed": 0}
    always = build_closed_set_dataset("loveda", tmp_path, "train+val", mosaic_p=1.0, **options)
    never = build_closed_set_dataset("loveda", tmp_path, "train+val", **options)
    item = always[0]
    assert item["sample_id"].startswith("mosaic:") and item["sample_id"].count("+") == 3
    assert item["pixel_values"].shape == (3, 16, 16) and item["mask"].shape == (16, 16)
    assert not never[0]["sample_id"].startswith("mosaic:")


def test_smart_crop_gives_up_after_the_eleventh_window_like_smartcrop_v1(monkeypatch):
    import bicor.data.augment as augment

    draws = []
    original = augment.random_window_origin

    def counting(*args, **kwargs):
        draws.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(augment, "random_window_origin", counting)
    one_class = np.zeros((64, 64), dtype=np.uint8)  # no window is ever balanced
    smart = CropAugment(8, (1.0,), False, False, smart_crop_ratio=0.75)
    smart(np.zeros((64, 64, 3), dtype=np.uint8), one_class, np.random.default_rng(0))
    assert len(draws) == 11  # the first window and 10 redraws
    draws.clear()
    two_classes = one_class.copy()
    two_classes[:, ::2] = 1  # every window is balanced: the first one is kept
    smart(np.zeros((64, 64, 3), dtype=np.uint8), two_classes, np.random.default_rng(0))
    assert len(draws) == 1


def test_flips_are_independent_coins_of_one_half():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4, 1).repeat(3, axis=2)
    seen = {"none": 0, "h": 0, "v": 0, "hv": 0}
    for seed in range(400):
        out, _ = flip_rotate(image, None, np.random.default_rng(seed), rot90=False)
        for name, want in (("none", image), ("h", image[:, ::-1]), ("v", image[::-1])):
            seen[name] += np.array_equal(out, want)
        seen["hv"] += np.array_equal(out, image[::-1, ::-1])
    assert sum(seen.values()) == 400
    assert all(60 < count < 140 for count in seen.values()), seen  # 100 expected each


def test_mosaic_split_reaches_both_ends_of_its_range():
    tiles = [(np.zeros((40, 50, 3), np.uint8), np.full((40, 50), i, np.uint8)) for i in range(4)]
    splits_y, splits_x = set(), set()
    for seed in range(600):
        _, mask = mosaic_pair(tiles, 32, np.random.default_rng(seed))
        ys, xs = np.nonzero(mask == 3)
        splits_y.add(int(ys.min()))
        splits_x.add(int(xs.min()))
    # size 32: the split lies anywhere in [32 // 4, 32 - 32 // 4] = [8, 24], ends included
    assert splits_y == set(range(8, 25)) and splits_x == set(range(8, 25))
