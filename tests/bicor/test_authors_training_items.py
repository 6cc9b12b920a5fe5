"""The BiCoR-Seg authors' ISPRS training items and scale augmentation, hand-checked.

The authors train on the files of GeoSeg's patch script: each tile and its two flipped copies
padded bottom/right to a multiple of 1024 (image black, labels ignore), cut into 1024 squares
every 512 (Vaihingen) or 1024 (Potsdam) pixels. Each item is one square; their ``RandomScale``
resizes the whole square (image PIL bicubic, mask nearest) and ``SmartCropV1`` crops it.
Here scaled down: 16 squares every 8 pixels.
"""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bicor.data import build_closed_set_dataset
from bicor.data.augment import CropAugment
from bicor.data.car_oversampling import square_origins
from bicor.data.palettes import IGNORE_INDEX
from tests.closed_set_fixtures import write_colour_label, write_vaihingen_fixture

BUILDING = 1
GRID = {"patch": 16, "stride": 8, "copies": 3}


def test_square_origins_lie_on_the_padded_grid():
    # a 1919 x 2569 tile pads to 2048 x 3072 (21.6 % padding): 3 x 5 squares every 512
    origins = square_origins(1919, 2569, 1024, 512)
    assert origins == [(t, left) for t in (0, 512, 1024) for left in (0, 512, 1024, 1536, 2048)]
    assert square_origins(6000, 6000, 1024, 1024)[-1] == (5120, 5120)  # Potsdam: 6 x 6


@pytest.fixture
def squares(tmp_path: Path):
    """A 40 x 56 training tile (pads to 48 x 64: 5 x 7 squares a copy), all building."""
    write_vaihingen_fixture(tmp_path, {"1": (40, 56), "30": (24, 32)})
    ids = np.full((40, 56), BUILDING)
    write_colour_label(tmp_path / "ground_truth" / "top_mosaic_09cm_area1.tif", ids)
    options = {"mode": "train", "crop_size": 16, "scales": (1.0,), "flips": False}
    return build_closed_set_dataset(
        "vaihingen", tmp_path, "train", crops_per_tile=GRID, rot90=False, seed=0, **options
    )


@pytest.mark.filterwarnings("ignore:vaihingen train")
def test_one_item_per_square_of_each_padded_copy(squares):
    assert squares.crop_mode == "squares"  # the default with a {patch, stride, copies} count
    expected = [
        f"top_mosaic_09cm_area1#{copy}_y{top}_x{left}"
        for copy in ("none", "hflip", "vflip")
        for top in (0, 8, 16, 24, 32)
        for left in (0, 8, 16, 24, 32, 40, 48)
    ]
    assert [squares.item_pair(i)[2] for i in range(len(squares))] == expected


@pytest.mark.filterwarnings("ignore:vaihingen train")
def test_the_padding_of_a_border_square_is_black_and_ignored(squares):
    last = 34  # copy "none", square (32, 48): rows 32-39 and columns 48-55 are the tile's
    image, mask, _ = squares.item_pair(last)
    assert (mask[:8, :8] == BUILDING).all()
    assert (mask[8:] == IGNORE_INDEX).all() and (mask[:, 8:] == IGNORE_INDEX).all()
    assert not image[8:].any() and not image[:, 8:].any()
    item = squares[last]  # scale 1 and a crop the size of the square: the square itself
    assert item["sample_id"] == "top_mosaic_09cm_area1#none_y32_x48@y0_x0_w16"
    np.testing.assert_array_equal(item["mask"].numpy(), mask)


def _square_pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    mask = rng.integers(0, 6, (16, 16), dtype=np.uint8)
    return image, mask


@pytest.mark.parametrize("path", ["scale_then_crop", "window"])
def test_scale_resamples_the_image_bicubic_and_the_mask_nearest(path):
    """Scale 1.5 of a 16 square with a 24 crop: the crop is the whole scaled square, so it must
    equal PIL's bicubic resize of the image to 24 (and the nearest one of the mask)."""
    image, mask = _square_pair()
    augment = CropAugment(24, scales=(1.5,), flips=False, rot90=False)
    rng = np.random.default_rng(0)
    if path == "scale_then_crop":
        out_image, out_mask, window = augment.scale_then_crop(image, mask, rng)
    else:
        out_image, out_mask, window = augment(image, mask, rng)
    assert (window.top, window.left, window.size, window.scale) == (0, 0, 16, 1.5)
    bicubic = np.asarray(Image.fromarray(image).resize((24, 24), Image.BICUBIC))
    bilinear = np.asarray(Image.fromarray(image).resize((24, 24), Image.BILINEAR))
    nearest = np.asarray(Image.fromarray(mask).resize((24, 24), Image.NEAREST))
    assert not np.array_equal(bicubic, bilinear)  # the two filters differ on this image
    np.testing.assert_array_equal(out_image, bicubic)
    np.testing.assert_array_equal(out_mask, nearest)
    old = CropAugment(24, scales=(1.5,), flips=False, rot90=False, image_filter="bilinear")
    np.testing.assert_array_equal(old.scale_then_crop(image, mask, rng)[0], bilinear)


@pytest.mark.filterwarnings("ignore:vaihingen train")
def test_whole_mode_scales_the_whole_tile_then_crops(tmp_path):
    """The authors' LoveDA items: the whole image scaled (bicubic) and cropped. A 16 x 16 tile
    at scale 1.5 with a 24 crop: the item is the whole tile resized bicubic."""
    write_vaihingen_fixture(tmp_path, {"1": (16, 16), "30": (24, 32)})
    write_colour_label(
        tmp_path / "ground_truth" / "top_mosaic_09cm_area1.tif", np.full((16, 16), 1)
    )
    dataset = build_closed_set_dataset(
        "vaihingen", tmp_path, "train", mode="train", crop_size=24, scales=(1.5,), flips=False,
        rot90=False, crops_per_tile=1, crop_mode="whole", seed=0,
    )  # fmt: skip
    image, _ = dataset.read_tile(0)
    expected = np.asarray(Image.fromarray(np.asarray(image)).resize((24, 24), Image.BICUBIC))
    item = dataset[0]
    assert len(dataset) == 1 and item["sample_id"] == "top_mosaic_09cm_area1@y0_x0_w16"
    from bicor.data.tile_dataset import normalise

    np.testing.assert_allclose(item["pixel_values"].numpy(), normalise(expected).numpy())
