"""GeoSeg's Vaihingen car oversampling (bicor/data/car_oversampling.py), hand-checked."""

from pathlib import Path

import numpy as np
import pytest

from bicor.data import build_closed_set_dataset
from bicor.data.car_oversampling import (
    COPIES,
    CarOversampling,
    CarPatch,
    GeoSegSquares,
    ZoomWindow,
    car_oversampling_from,
    car_patch_pair,
    car_share,
    crops_per_tile_from,
    draw_zoom_windows,
    plan_car_patches,
    square_count,
)
from bicor.task import SegTask
from btdnet.engine import load_config
from tests.closed_set_fixtures import write_colour_label, write_vaihingen_fixture

CAR, BUILDING = 4, 1
SMALL = CarOversampling(class_id=CAR, patch=16, stride=8)  # GeoSeg's 1024 / 512, scaled down
ROOT = Path(__file__).resolve().parents[2]


def test_geoseg_values_by_default():
    rule = CarOversampling()
    assert (rule.patch, rule.stride, rule.threshold, rule.seed) == (1024, 512, 0.1, 42)
    assert rule.zoom_sides == (384, 512)  # RandomSizedCrop(min_max_height=(3h//8, h//2))


def test_one_zoom_per_square_of_each_padded_copy():
    rng = np.random.default_rng(0)
    # 40 x 40 pads to 48 x 48: squares at 0, 8, ..., 32 on each axis -> 25 per copy
    windows = list(draw_zoom_windows(7, 40, 40, SMALL, rng))
    assert len(windows) == 3 * 25
    assert [w.copy for w in windows[::25]] == ["none", "hflip", "vflip"]
    squares = [(y, x) for y in range(0, 33, 8) for x in range(0, 33, 8)]
    for window, (y, x) in zip(windows, squares * 3):
        assert window.tile_index == 7 and 6 <= window.size <= 8
        assert y <= window.top and window.top + window.size <= y + 16
        assert x <= window.left and window.left + window.size <= x + 16


def test_car_share_of_a_hand_made_window():
    mask = np.full((16, 24), BUILDING, dtype=np.uint8)
    mask[0:4, 0:2] = CAR  # 8 car pixels in the top-left corner
    corner = ZoomWindow(0, "none", 0, 0, 8)
    # 8 of 64 pixels; nearest up-sampling x2 keeps the share: 32 / 256
    assert car_share(mask, corner, SMALL) == 32 / 256
    # the same window in the horizontally flipped copy shows columns 16..23: no car
    assert car_share(mask, ZoomWindow(0, "hflip", 0, 0, 8), SMALL) == 0.0
    # the vertically flipped copy puts the car rows at the bottom (rows 12..15)
    assert car_share(mask, ZoomWindow(0, "vflip", 8, 0, 8), SMALL) == 32 / 256
    # outside the tile (GeoSeg's padding) is ignored, not car
    assert car_share(mask, ZoomWindow(0, "none", 12, 20, 8), SMALL) == 0.0


def test_every_square_of_an_all_car_tile_gives_four_items_and_none_without_cars():
    cars = np.full((32, 48), CAR, dtype=np.uint8)  # a multiple of 16: no padding
    plan = plan_car_patches(1, lambda i: cars, SMALL)
    assert len(plan) == 3 * (3 * 5) * 4  # copies x squares (3 rows, 5 columns) x versions
    assert [p.transform for p in plan[:4]] == ["none", "vflip", "hflip", "rot90"]
    assert len({p.window for p in plan}) == len(plan) // 4
    no_cars = np.full((32, 48), BUILDING, dtype=np.uint8)
    assert plan_car_patches(1, lambda i: no_cars, SMALL) == []
    # the left half car: only zooms in the left half qualify (share 1 > 0.1); in the
    # horizontally flipped copy the cars are on the right
    half = no_cars.copy()
    half[:, :24] = CAR
    rule = CarOversampling(class_id=CAR, patch=16, stride=16)  # squares at x = 0, 16, 32
    for patch in plan_car_patches(1, lambda i: half, rule):
        window = patch.window
        assert car_share(half, window, rule) > 0.1
        if window.copy == "hflip":
            assert window.left + window.size > 24
        else:
            assert window.left < 24


def test_threshold_is_strict_and_draws_are_seeded():
    mask = np.full((16, 16), BUILDING, dtype=np.uint8)
    mask[:, :3] = CAR
    plans = [plan_car_patches(1, lambda i: mask, SMALL) for _ in range(2)]
    assert plans[0] == plans[1]
    for window in draw_zoom_windows(0, 16, 16, SMALL, np.random.default_rng(SMALL.seed)):
        share = car_share(mask, window, SMALL)
        assert (window in {p.window for p in plans[0]}) == (share > 0.1)
    everything = CarOversampling(class_id=CAR, patch=16, stride=8, threshold=0.0)
    assert len(plan_car_patches(1, lambda i: mask, everything)) >= len(plans[0])


def test_each_version_of_a_zoom_by_hand():
    image = np.arange(12 * 10 * 3, dtype=np.uint8).reshape(12, 10, 3)
    mask = (np.arange(12 * 10) % 7).astype(np.uint8).reshape(12, 10)
    window = ZoomWindow(0, "vflip", 2, 1, 4)  # rows 2..5, columns 1..4 of the flipped copy
    zoom_image, zoom_mask = image[::-1][2:6, 1:5], mask[::-1][2:6, 1:5]
    expected = {
        ("none", 0): (zoom_image, zoom_mask),
        ("vflip", 0): (zoom_image[::-1], zoom_mask[::-1]),
        ("hflip", 0): (zoom_image[:, ::-1], zoom_mask[:, ::-1]),
        ("rot90", 3): (np.rot90(zoom_image, 3), np.rot90(zoom_mask, 3)),
    }
    for (transform, k), (want_image, want_mask) in expected.items():
        got_image, got_mask = car_patch_pair(image, mask, CarPatch(window, transform, k), 4)
        np.testing.assert_array_equal(got_image, want_image)
        np.testing.assert_array_equal(got_mask, want_mask)
    big_image, big_mask = car_patch_pair(image, mask, CarPatch(window, "none"), 16)
    assert big_image.shape == (16, 16, 3) and big_mask.shape == (16, 16)


def test_config_values():
    names = ("impervious_surface", "building", "low_vegetation", "tree", "car", "clutter")
    assert car_oversampling_from(False, names) is None
    assert car_oversampling_from(True, names) == CarOversampling(class_id=4)
    assert car_oversampling_from({"patch": 16, "stride": 8}, names) == SMALL
    with pytest.raises(ValueError, match=r"unknown keys \['size'\]"):
        car_oversampling_from({"size": 16}, names)
    with pytest.raises(ValueError, match="no 'car' class"):
        car_oversampling_from(True, ("background", "building"))


def _fixture(root: Path) -> None:
    """Vaihingen train tiles 1 (all car) and 3 (no car), 32 x 48, a multiple of 16."""
    write_vaihingen_fixture(root, {"1": (32, 48), "3": (32, 48), "30": (24, 32)})
    write_colour_label(root / "ground_truth" / "top_mosaic_09cm_area1.tif", np.full((32, 48), CAR))
    ids = np.full((32, 48), BUILDING)
    write_colour_label(root / "ground_truth" / "top_mosaic_09cm_area3.tif", ids)


@pytest.mark.filterwarnings("ignore:vaihingen train")  # the fixture has 2 of the 15 tiles
def test_vaihingen_training_set_gains_the_car_zooms(tmp_path):
    _fixture(tmp_path)
    options = {"mode": "train", "crop_size": 16, "scales": (1.0,), "seed": 0}
    plain = build_closed_set_dataset("vaihingen", tmp_path, "train", **options)
    small = {"patch": 16, "stride": 8}
    cars = build_closed_set_dataset(
        "vaihingen", tmp_path, "train", car_oversampling=small, **options
    )
    assert len(plain) == 2 * 2 * 3  # random crops: ceil(32/16) * ceil(48/16) per tile
    assert len(cars) == len(plain) + 180  # tile 1 only: 3 copies x 15 squares x 4 versions
    assert {p.window.tile_index for p in cars.car_patches} == {
        cars.tile_ids.index("top_mosaic_09cm_area1")
    }
    item = cars[len(plain)]
    assert item["sample_id"].startswith("top_mosaic_09cm_area1#car:none_")
    assert item["pixel_values"].shape == (3, 16, 16)
    assert set(item["mask"].unique().tolist()) == {CAR}
    with pytest.raises(ValueError, match="car_oversampling=True does not apply to LoveDA"):
        build_closed_set_dataset("loveda", tmp_path, "train", car_oversampling=True, **options)


@pytest.mark.filterwarnings("ignore:vaihingen train")
def test_the_vaihingen_config_turns_it_on_and_potsdam_off(tmp_path):
    _fixture(tmp_path / "data")
    overrides = [
        f"data.root={tmp_path / 'data'}",
        "data.crop_size=16",
        "data.car_oversampling={patch: 16, stride: 8}",
        "model.variant=tiny",
        "model.pretrained=false",
    ]
    task = SegTask.from_config(load_config(ROOT / "configs" / "vaihingen.yaml", overrides))
    assert task.config.data.car_oversampling == {"patch": 16, "stride": 8}
    assert len(task._closed_set("train", "train").car_patches) == 180
    vaihingen = SegTask.from_config(load_config(ROOT / "configs" / "vaihingen.yaml"))
    potsdam = SegTask.from_config(load_config(ROOT / "configs" / "potsdam.yaml"))
    assert vaihingen.config.data.car_oversampling is True
    assert potsdam.config.data.car_oversampling is False


def test_geoseg_square_counts_by_hand():
    # a 2000 x 2500 Vaihingen-like tile pads to 2048 x 3072: 3 x 5 squares of 1024 every 512
    assert square_count(2000, 2500, 1024, 512) == 15
    assert GeoSegSquares().count(2000, 2500) == 45  # and its two flipped copies
    # a 6000 x 6000 Potsdam tile pads to 6144: 6 x 6 squares every 1024
    assert GeoSegSquares(stride=1024).count(6000, 6000) == 108
    assert square_count(40, 40, 1024, 512) == 1  # a small tile is one padded square
    assert crops_per_tile_from({"patch": 16, "stride": 8}) == GeoSegSquares(16, 8, 3)
    assert crops_per_tile_from(2) == 2 and crops_per_tile_from(None) is None
    with pytest.raises(ValueError, match="positive number or a mapping"):
        crops_per_tile_from(0)
    with pytest.raises(ValueError, match=r"unknown keys \['size'\]"):
        crops_per_tile_from({"size": 3})


@pytest.mark.filterwarnings("ignore:vaihingen train")
def test_geoseg_epoch_length_with_the_zooms_in_place_of_their_squares(tmp_path):
    _fixture(tmp_path)
    options = {"mode": "train", "crop_size": 16, "scales": (1.0,), "seed": 0}
    grid = {"patch": 16, "stride": 8, "copies": 3}
    squares = build_closed_set_dataset(
        "vaihingen", tmp_path, "train", crops_per_tile=grid, **options
    )
    assert len(squares) == 2 * 3 * 15  # two 32 x 48 tiles, 3 copies x 3 x 5 squares
    both = build_closed_set_dataset(
        "vaihingen",
        tmp_path,
        "train",
        crops_per_tile=grid,
        car_oversampling={"patch": 16, "stride": 8},
        **options,
    )
    # tile 1 is all car: each of its 45 squares becomes 4 zooms; tile 3 keeps its 45 crops
    assert len(both) == 45 + 45 * 4
    ids = [both[i]["sample_id"] for i in range(0, len(both), 15)]
    assert [i.split("_y")[0] for i in ids[:3]] == [f"top_mosaic_09cm_area3#{c}" for c in COPIES]
    assert all("#car:" in i for i in ids[3:])


def test_only_the_rot90_version_turns_and_its_quarter_turns_are_drawn():
    cars = np.full((32, 48), CAR, dtype=np.uint8)
    plan = plan_car_patches(1, lambda i: cars, SMALL)
    assert {p.rot_k for p in plan if p.transform != "rot90"} == {0}
    turns = [p.rot_k for p in plan if p.transform == "rot90"]
    assert set(turns) <= {0, 1, 2, 3} and len(set(turns)) >= 3  # 45 draws: not one value


def test_a_zoom_needs_at_least_two_pixels_and_a_positive_stride():
    for patch, stride in ((1, 1), (0, 1), (16, 0)):
        with pytest.raises(ValueError, match="patch >= 2 and stride >= 1"):
            CarOversampling(class_id=CAR, patch=patch, stride=stride)
    assert CarOversampling(class_id=CAR, patch=2, stride=1).patch == 2
