"""ISPRS Vaihingen and Potsdam loaders, colours, splits, crops, tile cache and the check."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from closed_set_fixtures import (
    ISPRS_COLOURS,
    write_colour_label,
    write_potsdam_fixture,
    write_vaihingen_fixture,
)
from PIL import Image

from bicor.data import (
    CLASS_NAMES,
    IGNORE_INDEX,
    ISPRS_PALETTE,
    ClosedSetDataError,
    TileCache,
    UnknownColourError,
    build_closed_set_dataset,
    check_closed_set_dataset,
    colour_to_ids,
    is_usable,
)
from bicor.data.augment import flip_rotate, random_window_origin, read_window
from bicor.data.image_io import read_rgb
from bicor.data.splits import split_tiles
from bicor.data.tile_dataset import IMAGENET_MEAN, IMAGENET_STD
from btdnet.tiling import window_starts

ALL_VAIHINGEN = [
    "1", "2", "3", "4", "5", "6", "7", "8", "10", "11", "12", "13", "14", "15", "16", "17",
    "20", "21", "22", "23", "24", "26", "27", "28", "29", "30", "31", "32", "33", "34", "35",
    "37", "38",
]  # fmt: skip
VAIHINGEN_TEST = [
    "2", "4", "6", "8", "10", "12", "14", "16", "20", "22", "24", "27", "29", "31", "33", "35",
    "38",
]  # fmt: skip
VAIHINGEN_GEOSEG_TRAIN = [
    "1", "3", "5", "7", "11", "13", "15", "17", "21", "23", "26", "28", "32", "34", "37",
]  # fmt: skip
POTSDAM_TEST = [
    "2_13", "2_14", "3_13", "3_14", "4_13", "4_14", "4_15", "5_13", "5_14", "5_15", "6_13",
    "6_14", "6_15", "7_13",
]  # fmt: skip
POTSDAM_MMSEG_TRAIN = [
    "2_10", "2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12", "5_10", "5_11",
    "5_12", "6_7", "6_8", "6_9", "6_10", "6_11", "6_12", "7_7", "7_8", "7_9", "7_11", "7_12",
]  # fmt: skip


def build(*args, **kwargs):
    """build_closed_set_dataset with the fixture's 'missing tiles' warning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_closed_set_dataset(*args, **kwargs)


def crop_origin(sample_id: str) -> tuple[str, int, int, int]:
    match = re.fullmatch(r"(.+)@y(-?\d+)_x(-?\d+)_w(\d+)", sample_id)
    assert match, sample_id
    return match[1], int(match[2]), int(match[3]), int(match[4])


def denormalise(pixel_values: torch.Tensor) -> np.ndarray:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (pixel_values * std + mean).mul(255).round().permute(1, 2, 0).numpy().astype(np.uint8)


# --- colours -------------------------------------------------------------------------------


def test_colour_to_ids_maps_the_six_colours_and_the_eroded_boundary():
    rgb = np.array(
        [
            [[255, 255, 255], [0, 0, 255], [0, 255, 255], [0, 255, 0]],
            [[255, 255, 0], [255, 0, 0], [0, 0, 0], [255, 255, 255]],
        ],
        dtype=np.uint8,
    )
    ids = colour_to_ids(rgb, ISPRS_PALETTE, source="x.tif", boundary_is_ignore=True)
    assert ids.dtype == np.uint8
    assert ids.tolist() == [[0, 1, 2, 3], [4, 5, 255, 0]]
    assert CLASS_NAMES["vaihingen"] == (
        "impervious_surface", "building", "low_vegetation", "tree", "car", "clutter",
    )  # fmt: skip
    assert CLASS_NAMES["potsdam"] == CLASS_NAMES["vaihingen"]


def test_unknown_colour_is_an_error_naming_file_and_colour():
    rgb = np.full((3, 4, 3), 255, dtype=np.uint8)
    rgb[1, 2] = (10, 20, 30)
    with pytest.raises(UnknownColourError) as error:
        colour_to_ids(rgb, ISPRS_PALETTE, source="area7.tif", boundary_is_ignore=True)
    message = str(error.value)
    assert message.startswith("area7.tif: colour (10, 20, 30) at row 1, column 2")
    assert "(10, 20, 30) x 1" in message
    # black is no class in the full (non-eroded) labels
    rgb[1, 2] = (0, 0, 0)
    with pytest.raises(UnknownColourError, match=r"colour \(0, 0, 0\)"):
        colour_to_ids(rgb, ISPRS_PALETTE, source="area7.tif", boundary_is_ignore=False)


# --- splits --------------------------------------------------------------------------------


def test_vaihingen_splits_geoseg_and_mmseg():
    geoseg = {s: split_tiles("vaihingen", "geoseg", s) for s in ("train", "val", "test")}
    assert geoseg["val"] == ["30"]
    assert geoseg["test"] == VAIHINGEN_TEST
    assert geoseg["train"] == VAIHINGEN_GEOSEG_TRAIN
    assert sorted((t for tiles in geoseg.values() for t in tiles), key=int) == ALL_VAIHINGEN
    mmseg_train = split_tiles("vaihingen", "mmseg", "train")
    assert mmseg_train == sorted([*VAIHINGEN_GEOSEG_TRAIN, "30"], key=int)
    assert split_tiles("vaihingen", "mmseg", "test") == VAIHINGEN_TEST
    assert split_tiles("vaihingen", "geoseg", "train+val")[-1] == "30"
    with pytest.raises(ValueError, match="unknown split scheme"):
        split_tiles("vaihingen", "unetformer", "train")
    with pytest.raises(ValueError, match="unknown split 'trian'"):
        split_tiles("vaihingen", "geoseg", "trian")


def test_potsdam_splits_leave_out_7_10_unless_asked():
    train = split_tiles("potsdam", "geoseg", "train")
    assert len(train) == 22 and "7_10" not in train and "2_10" not in train
    assert split_tiles("potsdam", "geoseg", "val") == ["2_10"]
    assert split_tiles("potsdam", "geoseg", "test") == POTSDAM_TEST
    assert "7_10" in split_tiles("potsdam", "geoseg", "train", include_excluded=True)
    assert split_tiles("potsdam", "mmseg", "train") == POTSDAM_MMSEG_TRAIN
    with_7_10 = split_tiles("potsdam", "mmseg", "train", include_excluded=True)
    assert len(with_7_10) == 24 and set(with_7_10) - set(POTSDAM_MMSEG_TRAIN) == {"7_10"}
    assert split_tiles("potsdam", "mmseg", "test") == POTSDAM_TEST


# --- Vaihingen -----------------------------------------------------------------------------


def test_vaihingen_eval_items_carry_whole_tiles_with_eroded_labels(tmp_path):
    written = write_vaihingen_fixture(tmp_path)
    with pytest.warns(UserWarning, match=r"vaihingen test: 15 problem\(s\).*missing_image"):
        dataset = build_closed_set_dataset("vaihingen", tmp_path, "test", mode="eval")
    assert dataset.tile_ids == ["top_mosaic_09cm_area2", "top_mosaic_09cm_area4"]
    assert len(dataset) == 2
    assert {m["kind"] for m in dataset.missing} == {"missing_image"}
    assert len(dataset.missing) == 15
    item = dataset[1]
    tile = written["4"]
    assert item["sample_id"] == "top_mosaic_09cm_area4"
    assert item["pixel_values"].dtype == torch.float32
    assert item["pixel_values"].shape == (3, 40, 56)
    assert item["mask"].dtype == torch.int64
    np.testing.assert_array_equal(item["mask"].numpy(), tile["eroded_ids"])
    assert (item["mask"].numpy() == IGNORE_INDEX).sum() == tile["boundary"].sum() > 0
    np.testing.assert_array_equal(denormalise(item["pixel_values"]), tile["image"])
    # the full labels on request
    full = build("vaihingen", tmp_path, "test", mode="eval", eroded_labels=False)
    np.testing.assert_array_equal(full[1]["mask"].numpy(), tile["ids"])


def test_vaihingen_falls_back_to_gts_for_participants(tmp_path):
    written = write_vaihingen_fixture(tmp_path, {"1": (32, 40)})
    (tmp_path / "ground_truth").rename(tmp_path / "gts_for_participants")
    dataset = build("vaihingen", tmp_path, "train", mode="eval", eroded_labels=False)
    np.testing.assert_array_equal(dataset[0]["mask"].numpy(), written["1"]["ids"])


def test_wrong_colour_in_a_label_names_file_and_colour(tmp_path):
    written = write_vaihingen_fixture(tmp_path, {"1": (32, 40), "3": (32, 40)})
    bad = tmp_path / "ground_truth" / "top_mosaic_09cm_area3.tif"
    rgb = ISPRS_COLOURS[written["3"]["ids"]]
    rgb[5, 7] = (128, 64, 0)
    Image.fromarray(rgb).save(bad, format="TIFF")
    dataset = build("vaihingen", tmp_path, "train", mode="eval", eroded_labels=False)
    dataset[0]  # tile 1 is fine
    with pytest.raises(UnknownColourError) as error:
        dataset[1]
    assert str(error.value).startswith(f"{bad}: colour (128, 64, 0) at row 5, column 7")


def test_label_of_another_size_is_an_error(tmp_path):
    write_vaihingen_fixture(tmp_path, {"1": (32, 40)})
    label = tmp_path / "ground_truth" / "top_mosaic_09cm_area1.tif"
    write_colour_label(label, np.zeros((32, 41), dtype=np.uint8))
    with pytest.raises(ClosedSetDataError, match=r"label is 32x41 .* is 32x40"):
        build("vaihingen", tmp_path, "train")


def test_no_tile_found_is_an_error_naming_the_expected_files(tmp_path):
    with pytest.raises(ClosedSetDataError, match=r"top_mosaic_09cm_area1\.tif"):
        build_closed_set_dataset("vaihingen", tmp_path, "train")


def test_train_crops_at_scale_one_are_tile_windows(tmp_path):
    written = write_vaihingen_fixture(tmp_path)
    dataset = build(
        "vaihingen", tmp_path, "train", crop_size=24, scales=(1.0,), flips=False, rot90=False,
        seed=3,
    )  # fmt: skip
    # tiles 1 (64x80) and 3 (56x72): ceil(64/24)*ceil(80/24) + ceil(56/24)*ceil(72/24) crops
    assert len(dataset) == 3 * 4 + 3 * 3
    by_name = {data["name"]: data for data in written.values()}
    for index in (0, 5, 13, 20):
        item = dataset[index]
        name, top, left, size = crop_origin(item["sample_id"])
        assert size == 24 and 0 <= top <= by_name[name]["ids"].shape[0] - 24
        tile = by_name[name]
        np.testing.assert_array_equal(
            item["mask"].numpy(), tile["ids"][top : top + 24, left : left + 24]
        )
        np.testing.assert_array_equal(
            denormalise(item["pixel_values"]), tile["image"][top : top + 24, left : left + 24]
        )
    # seeded: a second dataset with the seed, read in the reverse order, cuts the same crops
    # (item i of epoch e does not depend on what was read before); another seed or another
    # epoch gives other crops
    first = [dataset[i]["sample_id"] for i in range(len(dataset))]
    again = build(
        "vaihingen", tmp_path, "train", crop_size=24, scales=(1.0,), flips=False, rot90=False,
        seed=3,
    )  # fmt: skip
    assert [again[i]["sample_id"] for i in reversed(range(len(again)))] == first[::-1]
    other = build(
        "vaihingen", tmp_path, "train", crop_size=24, scales=(1.0,), flips=False, rot90=False,
        seed=4,
    )  # fmt: skip
    assert [other[i]["sample_id"] for i in range(len(other))] != first
    dataset.set_epoch(1)
    assert [dataset[i]["sample_id"] for i in range(len(dataset))] != first


def test_crops_larger_than_the_tile_are_padded_with_ignore(tmp_path):
    written = write_vaihingen_fixture(tmp_path, {"1": (40, 56)})
    dataset = build(
        "vaihingen", tmp_path, "train", crop_size=64, scales=(1.0,), flips=False, rot90=False,
        seed=0, crops_per_tile=3,
    )  # fmt: skip
    assert len(dataset) == 3
    for index in range(3):
        item = dataset[index]
        _, top, left, _ = crop_origin(item["sample_id"])
        assert -24 <= top <= 0 and -8 <= left <= 0
        mask = item["mask"].numpy()
        inside = mask[-top : -top + 40, -left : -left + 56]
        np.testing.assert_array_equal(inside, written["1"]["ids"])
        assert (mask == IGNORE_INDEX).sum() == 64 * 64 - 40 * 56


def test_scale_two_doubles_every_label_pixel(tmp_path):
    written = write_vaihingen_fixture(tmp_path, {"1": (64, 80)})
    dataset = build(
        "vaihingen", tmp_path, "train", crop_size=32, scales=(2.0,), flips=False, rot90=False,
        seed=1,
    )  # fmt: skip
    item = dataset[0]
    _, top, left, size = crop_origin(item["sample_id"])
    assert size == 16
    window = written["1"]["ids"][top : top + 16, left : left + 16]
    np.testing.assert_array_equal(item["mask"].numpy(), window.repeat(2, 0).repeat(2, 1))


def test_flips_and_rotations_keep_image_and_mask_aligned():
    mask = np.arange(30, dtype=np.uint8).reshape(5, 6) % 7
    image = np.stack([mask * 10, mask, mask + 1], axis=-1).astype(np.uint8)
    seen = set()
    for seed in range(40):
        out_image, out_mask = flip_rotate(image, mask, np.random.default_rng(seed))
        np.testing.assert_array_equal(out_image[..., 0], out_mask * 10)
        seen.add(out_mask.tobytes() + bytes(out_mask.shape))
    assert len(seen) == 8  # the 8 distinct flips x rotations (dihedral group)
    out_image, out_mask = flip_rotate(
        image, mask, np.random.default_rng(0), flips=False, rot90=False
    )
    np.testing.assert_array_equal(out_mask, mask)


def test_crop_window_origins_reach_every_offset_of_tile_and_padding():
    rng = np.random.default_rng(0)
    # tile 3 px taller than the window: tops 0..3 (every row can be the first);
    # tile 2 px narrower: lefts -2..0 (the tile lands anywhere inside the padded window)
    tops, lefts = set(), set()
    for _ in range(400):
        top, left = random_window_origin(10, 5, 7, rng)
        tops.add(top)
        lefts.add(left)
    assert tops == {0, 1, 2, 3} and lefts == {-2, -1, 0}
    assert random_window_origin(7, 7, 7, rng) == (0, 0)


def test_read_window_pads_outside_the_tile():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    mask = np.arange(20, dtype=np.uint8).reshape(4, 5)
    win_image, win_mask = read_window(image, mask, -1, 3, 3)
    assert win_mask.tolist() == [[255, 255, 255], [3, 4, 255], [8, 9, 255]]
    assert win_image[0].sum() == 0 and win_image[1, 2].sum() == 0
    np.testing.assert_array_equal(win_image[1:, :2], image[:2, 3:])


def test_sliding_crops_cover_the_tile_on_a_grid(tmp_path):
    write_vaihingen_fixture(tmp_path, {"1": (64, 80)})
    dataset = build(
        "vaihingen", tmp_path, "train", crop_size=32, scales=(1.0,), crop_mode="sliding",
        crop_stride=24, seed=0,
    )  # fmt: skip
    assert window_starts(64, 32, 24) == [0, 24, 32]
    assert window_starts(80, 32, 24) == [0, 24, 48]
    origins = [crop_origin(dataset[i]["sample_id"])[1:3] for i in range(len(dataset))]
    assert origins == [(t, left) for t in (0, 24, 32) for left in (0, 24, 48)]


# --- Potsdam and the tile cache --------------------------------------------------------------


def test_potsdam_reads_rgb_or_irrg_and_leaves_out_7_10(tmp_path):
    written = write_potsdam_fixture(tmp_path)
    rgb = build("potsdam", tmp_path, "train", mode="eval", eroded_labels=False)
    assert rgb.tile_ids == ["top_potsdam_2_11", "top_potsdam_3_10"]
    np.testing.assert_array_equal(denormalise(rgb[0]["pixel_values"]), written["2_11"]["rgb"])
    np.testing.assert_array_equal(rgb[0]["mask"].numpy(), written["2_11"]["ids"])
    irrg = build("potsdam", tmp_path, "train", mode="eval", image_mode="IRRG")
    np.testing.assert_array_equal(denormalise(irrg[0]["pixel_values"]), written["2_11"]["irrg"])
    np.testing.assert_array_equal(irrg[0]["mask"].numpy(), written["2_11"]["eroded_ids"])
    with_7_10 = build("potsdam", tmp_path, "train", mode="eval", include_excluded=True)
    assert with_7_10.tile_ids == ["top_potsdam_2_11", "top_potsdam_3_10", "top_potsdam_7_10"]
    val = build("potsdam", tmp_path, "val", mode="eval")
    assert val.tile_ids == ["top_potsdam_2_10"] and not val.missing
    mmseg = build("potsdam", tmp_path, "test", mode="eval", split_scheme="mmseg")
    assert mmseg.tile_ids == ["top_potsdam_2_13"]
    with pytest.raises(ValueError, match="image_mode='RGB'"):
        build("vaihingen", tmp_path, "train", image_mode="RGB")


def test_tiles_are_decoded_once_into_the_cache(tmp_path):
    written = write_potsdam_fixture(tmp_path, ("2_10",))
    calls = []

    def decode(path: Path) -> np.ndarray:
        calls.append(path)
        return read_rgb(path)

    image_path = tmp_path / "2_Ortho_RGB" / "top_potsdam_2_10_RGB.tif"
    cache = TileCache(tmp_path / "cache")
    first = cache.get(image_path, "rgb", decode)
    again = TileCache(tmp_path / "cache").get(image_path, "rgb", decode)  # like a new worker
    assert len(calls) == 1
    assert isinstance(again, np.memmap) and not again.flags.writeable
    np.testing.assert_array_equal(again, written["2_10"]["rgb"])
    np.testing.assert_array_equal(first, again)
    assert len(list((tmp_path / "cache").glob("top_potsdam_2_10_RGB.rgb.*.npy"))) == 1
    assert not list((tmp_path / "cache").glob(".*.tmp"))
    # a replaced source file is decoded again
    Image.fromarray(written["2_10"]["irrg"]).save(image_path, format="TIFF")
    fresh = TileCache(tmp_path / "cache").get(image_path, "rgb", decode)
    assert len(calls) == 2
    np.testing.assert_array_equal(fresh, written["2_10"]["irrg"])


def test_dataset_uses_the_cache_dir_and_pickles_without_the_maps(tmp_path):
    write_potsdam_fixture(tmp_path, ("2_11",))
    dataset = build("potsdam", tmp_path, "train", crop_size=16, cache_dir=tmp_path / "c", seed=0)
    before = dataset[0]
    names = sorted(p.name.split(".")[1] for p in (tmp_path / "c").glob("*.npy"))
    assert names == ["ids", "rgb"]
    assert not (tmp_path / ".cache").exists()
    clone = pickle.loads(pickle.dumps(dataset))
    assert len(pickle.dumps(dataset)) < 20_000  # the maps are not pickled
    after = clone[0]
    assert before["sample_id"] == after["sample_id"]
    torch.testing.assert_close(before["pixel_values"], after["pixel_values"])
    default = build("potsdam", tmp_path, "train", crop_size=16, seed=0)
    default[0]
    assert len(list((tmp_path / ".cache").glob("*.npy"))) == 2


# --- check -----------------------------------------------------------------------------------


def test_check_reports_counts_and_problems(tmp_path):
    written = write_vaihingen_fixture(tmp_path)
    rgb = ISPRS_COLOURS[written["3"]["ids"]]
    rgb[0, 0] = (1, 2, 3)
    rgb[1, 1] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "ground_truth" / "top_mosaic_09cm_area3.tif")
    (tmp_path / "ground_truth_eroded" / "top_mosaic_09cm_area4_noBoundary.tif").unlink()
    Image.fromarray(written["1"]["image"]).save(tmp_path / "top" / "top_mosaic_09cm_area99.tif")
    report = check_closed_set_dataset("vaihingen", tmp_path)
    assert set(report) == {"dataset", "root", "splits", "problems", "layout"}
    assert report["dataset"] == "vaihingen" and report["root"] == str(tmp_path)
    assert report["layout"]["eroded_label"] == {"ground_truth_eroded": 4}
    train = report["splits"]["train"]
    assert train["images"] == 2 and train["samples"] == 2  # tile 3 still has its eroded label
    assert train["sizes"] == {"56x72": 1, "64x80": 1}
    expected = np.bincount(written["1"]["ids"].ravel(), minlength=6)
    expected += np.bincount(written["3"]["eroded_ids"].ravel(), minlength=256)[:6]
    assert train["class_pixels"] == dict(zip(CLASS_NAMES["vaihingen"], expected.tolist()))
    assert train["ignore_pixels"] == int(written["1"]["boundary"].sum()) + int(
        written["3"]["boundary"].sum()
    )
    assert abs(sum(train["class_shares"].values()) - 1.0) < 1e-5
    test = report["splits"]["test"]
    assert test["samples"] == 2 and test["images"] == 2
    kinds = {}
    for problem in report["problems"]:
        kinds.setdefault(problem["kind"], []).append(problem)
    assert len(kinds["missing_image"]) == 33 - 5
    unknown = kinds["unknown_colour"]
    assert len(unknown) == 1 and unknown[0]["file"].endswith("top_mosaic_09cm_area3.tif")
    assert unknown[0]["detail"] == "colour (1, 2, 3) x 2 pixels"
    assert [p["file"] for p in kinds["missing_label"]] == [
        str(tmp_path / "ground_truth_eroded" / "top_mosaic_09cm_area4_noBoundary.tif")
    ]
    assert kinds["unlisted_tile"][0]["file"].endswith("top_mosaic_09cm_area99.tif")
    assert not is_usable(report)
    assert is_usable(check_closed_set_dataset("vaihingen", tmp_path / "nothing")) is False


def test_check_of_a_clean_potsdam_copy_is_usable(tmp_path):
    written = write_potsdam_fixture(tmp_path)
    report = check_closed_set_dataset("potsdam", tmp_path)
    assert is_usable(report)
    assert report["splits"]["val"]["class_pixels"] == dict(
        zip(CLASS_NAMES["potsdam"], np.bincount(written["2_10"]["ids"].ravel()).tolist())
    )
    assert report["splits"]["train"]["samples"] == 2  # 7_10 is left out
    assert {p["kind"] for p in report["problems"]} == {"missing_image"}


# --- a few training steps --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vaihingen", "potsdam"])
def test_a_few_training_steps_run_on_the_fixture(tmp_path, name):
    writer = write_vaihingen_fixture if name == "vaihingen" else write_potsdam_fixture
    writer(tmp_path)
    train = build(name, tmp_path, "train", crop_size=32, seed=0)
    evaluation = build(name, tmp_path, "val", mode="eval")
    loader = torch.utils.data.DataLoader(train, batch_size=4, shuffle=True)
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, train.num_classes, 3, padding=1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = torch.nn.CrossEntropyLoss(ignore_index=train.ignore_index)
    for step, batch in enumerate(loader):
        assert batch["pixel_values"].shape[1:] == (3, 32, 32)
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
    item = evaluation[0]
    logits = model(item["pixel_values"][None])
    assert logits.shape[-2:] == item["mask"].shape


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # the broken file, on purpose
def test_single_band_or_broken_images_are_errors_naming_the_file(tmp_path):
    grey = tmp_path / "grey.tif"
    Image.fromarray(np.zeros((4, 5), dtype=np.uint8)).save(grey, format="TIFF")
    with pytest.raises(ClosedSetDataError, match=r"grey\.tif: expected a 3-channel 8-bit image, "):
        read_rgb(grey)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00not really a tiff")
    with pytest.raises(ClosedSetDataError, match=r"broken\.tif: "):
        read_rgb(broken)
    with pytest.raises(ClosedSetDataError, match=r"absent\.tif: file not found"):
        read_rgb(tmp_path / "absent.tif")
