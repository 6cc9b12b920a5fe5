"""Referring transforms: the mask is resized with nearest neighbour (PIL's, as the LAVT family
does), the image bilinear, then ImageNet-normalised; values checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from btdnet.data.transforms import (
    image_to_tensor,
    mask_to_tensor,
    read_gray_array,
    resize_mask,
)
from btdnet.normalization import IMAGENET_MEAN, IMAGENET_STD, denormalize, normalize_array


def test_shrinking_keeps_a_one_pixel_line_where_nearest_samples_it():
    # 6 -> 3 rows: PIL's nearest samples source rows floor((i + 0.5) * 2) = 1, 3, 5, so the
    # line on row 3 becomes output row 1, whole. Bilinear would average it with its empty
    # neighbours (3/8 of a pixel: rounded away) and lose it.
    mask = np.zeros((6, 6), dtype=bool)
    mask[3, :] = True
    out = mask_to_tensor(mask, 3)
    assert out.dtype == torch.int64
    assert out.tolist() == [[0, 0, 0], [1, 1, 1], [0, 0, 0]]
    # a line on row 2 is between samples and disappears (nearest, not a box filter)
    mask = np.zeros((6, 6), dtype=bool)
    mask[2, :] = True
    assert not mask_to_tensor(mask, 3).any()


def test_shrinking_a_three_of_four_block_follows_the_sampled_pixel():
    # 4x4 -> 2x2 samples source pixels (1, 1), (1, 3), (3, 1), (3, 3). The top-left 2x2 block
    # holds 3 ones but not (1, 1): nearest gives 0 where an area average (0.75) would give 1;
    # the lone pixel (3, 3) is kept, where PIL's bilinear (weight 9/64) would drop it.
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = mask[0, 1] = mask[1, 0] = True
    mask[3, 3] = True
    assert resize_mask(mask, 2, 2).tolist() == [[False, False], [False, True]]


def test_enlarging_and_non_square_targets():
    # 2x2 -> 5x5: output row/col i samples floor((i + 0.5) * 0.4) = 0, 0, 1, 1, 1
    mask = np.array([[True, False], [False, False]])
    out = mask_to_tensor(mask, 5)
    expected = np.zeros((5, 5), dtype=np.int64)
    expected[:2, :2] = 1
    np.testing.assert_array_equal(out.numpy(), expected)
    # (height, width) order: a 2x3 target from 4x6 samples rows 1, 3 and columns 1, 3, 5
    mask = np.zeros((4, 6), dtype=bool)
    mask[1, 5] = True
    assert resize_mask(mask, 2, 3).tolist() == [[False, False, True], [False, False, False]]
    # the same size is returned as it is
    assert resize_mask(mask, 4, 6) is mask


def test_normalisation_hand_values():
    image = np.zeros((1, 2, 3), dtype=np.uint8)
    image[0, 1] = (255, 0, 51)
    out = normalize_array(image)
    assert out.shape == (3, 1, 2) and out.dtype == torch.float32
    # ImageNet statistics written out here, not taken from the module under test
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    assert (mean, std) == (IMAGENET_MEAN, IMAGENET_STD)
    for c in range(3):
        assert out[c, 0, 0].item() == pytest.approx(-mean[c] / std[c], 1e-6)
    assert out[1, 0, 1].item() == pytest.approx((0.0 - 0.456) / 0.224, 1e-6)
    assert out[0, 0, 1].item() == pytest.approx((1.0 - 0.485) / 0.229, 1e-6)
    assert out[2, 0, 1].item() == pytest.approx((0.2 - 0.406) / 0.225, 1e-6)


def test_denormalize_gives_back_the_uint8_pixels():
    image = np.array([[[0, 128, 255], [17, 200, 3]], [[99, 1, 254], [255, 255, 0]]], np.uint8)
    back = denormalize(normalize_array(image))  # (2, 2, 3)
    assert back.dtype == np.uint8 and np.array_equal(back, image)


def test_image_is_resized_bilinear_to_a_square():
    # a 2x1 image (black, white) enlarged to 4x4 with PIL's bilinear: columns blend
    image = Image.fromarray(np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8))
    out = image_to_tensor(image, 4)
    assert out.shape == (3, 4, 4)
    red = out[0] * 0.229 + 0.485  # back to [0, 1]
    expected = np.asarray(image.resize((4, 4), Image.Resampling.BILINEAR))[..., 0] / 255.0
    np.testing.assert_allclose(red.numpy(), expected, atol=1e-6)
    assert 0.0 < red[0, 1].item() < red[0, 2].item() < 1.0  # blended, not nearest


def test_grey_masks_keep_their_values_and_bilevel_ones_read_as_0_255(tmp_path):
    values = np.array([[0, 1, 7], [128, 254, 255]], dtype=np.uint8)
    Image.fromarray(values, mode="L").save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_gray_array(tmp_path / "grey.png"), values)
    bits = np.array([[0, 1, 1], [1, 0, 0]], dtype=bool)
    Image.fromarray(bits).save(tmp_path / "bits.png")  # mode "1"
    assert Image.open(tmp_path / "bits.png").mode == "1"
    np.testing.assert_array_equal(read_gray_array(tmp_path / "bits.png"), bits * 255)
