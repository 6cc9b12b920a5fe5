"""benchmark.py --task seg --predictions: other models' closed-set outputs, scored as a model's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from closed_set_fixtures import ISPRS_COLOURS, write_vaihingen_fixture
from PIL import Image

from bicor.data.synthetic_seg import write_synthetic_seg
from bicor.models import build_bicor

REPO = Path(__file__).resolve().parents[2]
TEST_TILES = {"2": (24, 32), "4": (16, 24)}  # GeoSeg test tiles (the others are absent)
# what names the predictions' source (a checkpoint and how it was chosen, or a folder), not a score
SOURCE_KEYS = {"checkpoint", "selection", "window", "stride", "border", "tta", "predictions"}


def _benchmark(argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location("benchmark", REPO / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def _seg_args(root: Path, source: list[str], dataset: str = "vaihingen", split="test") -> list:
    return ["--task=seg", f"--dataset={dataset}", f"--root={root}", f"--split={split}", *source]


@pytest.fixture
def vaihingen(tmp_path: Path) -> tuple[Path, dict]:
    return tmp_path / "vaihingen", write_vaihingen_fixture(tmp_path / "vaihingen", TEST_TILES)


def _write_ids(folder: Path, name: str, ids: np.ndarray, colour: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if colour:
        path = folder / f"{name}.tif"
        Image.fromarray(ISPRS_COLOURS[ids]).save(path, format="TIFF")
    else:
        path = folder / f"{name}.png"
        Image.fromarray(ids.astype(np.uint8), mode="L").save(path)
    return path


def test_hand_counted_scores_from_single_band_and_colour_files(vaihingen, tmp_path, capsys):
    root, tiles = vaihingen
    # Every pixel predicted impervious surface (class 0). Eroded ground truth (GeoSeg scoring):
    # n0 = labelled class-0 pixels, n = all labelled pixels. IoU_0 = n0 / n, OA = n0 / n, the
    # other classes have IoU 0 and no F1 (no true positive); F1_0 = 2 n0 / (n0 + n).
    gts = [tiles[t]["eroded_ids"] for t in ("2", "4")]
    n0 = sum(int((g == 0).sum()) for g in gts)
    n = sum(int((g != 255).sum()) for g in gts)
    approx = lambda value: pytest.approx(value, abs=0.0051)  # noqa: E731  (JSON: 2 decimals)
    for colour in (False, True):
        folder = tmp_path / f"preds_{colour}"
        for tile in ("2", "4"):
            zeros = np.zeros_like(tiles[tile]["ids"])
            _write_ids(folder, tiles[tile]["name"], zeros, colour=colour)
        out = tmp_path / f"r_{colour}.json"
        assert _benchmark(_seg_args(root, [f"--predictions={folder}", f"--json={out}"])) == 0
        results = json.loads(out.read_text())
        assert results["images"] == 2 and results["pixels"] == n
        assert results["OA"] == approx(100 * n0 / n)
        assert results["per_class"]["impervious_surface"]["IoU"] == approx(100 * n0 / n)
        assert results["per_class"]["impervious_surface"]["F1"] == approx(200 * n0 / (n0 + n))
        assert results["per_class"]["building"]["F1"] is None
        # GeoSeg: mIoU over the five classes without clutter; mF1 over the defined F1 only
        assert results["mIoU"] == approx(100 * n0 / n / 5)
        assert results["mF1"] == approx(200 * n0 / (n0 + n))
        assert results["protocol"] == "geoseg" and results["predictions"] == str(folder)
    assert "| building | 0.00 | – |" in capsys.readouterr().out


def test_save_predictions_round_trip_gives_identical_numbers(tmp_path):
    torch.manual_seed(0)
    model = build_bicor("tiny", num_classes=6, img_size=64, class_names=list("abcdef"))
    model.save_pretrained(tmp_path / "ckpt")
    write_synthetic_seg(tmp_path / "data", train=1, val=2, size=64)
    common = ["--window=48", "--stride=16", "--num-workers=0"]
    saved = tmp_path / "saved"
    first = [f"--checkpoint={tmp_path / 'ckpt'}", f"--save-predictions={saved}", *common]
    assert (
        _benchmark(
            _seg_args(
                tmp_path / "data", [*first, f"--json={tmp_path / 'a.json'}"], "synthetic_seg", "val"
            )
        )
        == 0
    )
    assert sorted(p.name for p in saved.glob("*.png")) == ["val_00000.png", "val_00001.png"]
    second = [f"--predictions={saved}", f"--json={tmp_path / 'b.json'}"]
    assert _benchmark(_seg_args(tmp_path / "data", second, "synthetic_seg", "val")) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert set(a) - SOURCE_KEYS == set(b) - SOURCE_KEYS
    assert {k: v for k, v in a.items() if k not in SOURCE_KEYS} == {
        k: v for k, v in b.items() if k not in SOURCE_KEYS
    }


def _expect_error(root: Path, folder: Path, capsys, *fragments: str) -> None:
    assert _benchmark(_seg_args(root, [f"--predictions={folder}"])) == 1
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "benchmark.py: error:" in line]
    for fragment in fragments:
        assert fragment in line, line


def test_bad_prediction_folders_are_one_line_errors_naming_the_file(vaihingen, tmp_path, capsys):
    root, tiles = vaihingen
    names = {t: tiles[t]["name"] for t in tiles}
    good = {t: tiles[t]["ids"] for t in tiles}

    def fresh(label: str) -> Path:
        folder = tmp_path / label
        for tile, ids in good.items():
            _write_ids(folder, names[tile], ids)
        return folder

    folder = fresh("missing")
    (folder / f"{names['4']}.png").unlink()
    _expect_error(root, folder, capsys, str(folder / f"{names['4']}.png"), "missing")

    folder = fresh("extra")
    _write_ids(folder, "top_mosaic_09cm_area1", good["2"])  # a train tile
    _expect_error(root, folder, capsys, str(folder / "top_mosaic_09cm_area1.png"), "extra")

    folder = fresh("doubled")
    _write_ids(folder, names["2"], good["2"], colour=True)
    _expect_error(root, folder, capsys, f"{names['2']}.tif", "two predictions")

    folder = fresh("missized")
    _write_ids(folder, names["4"], np.zeros((16, 25), dtype=np.uint8))
    _expect_error(root, folder, capsys, str(folder / f"{names['4']}.png"), "16x25", "16x24")

    folder = fresh("range")
    bad = good["2"].copy()
    bad[3, 4] = 6  # six classes: 0..5
    _write_ids(folder, names["2"], bad)
    _expect_error(root, folder, capsys, str(folder / f"{names['2']}.png"), "0..5", "[6]")

    folder = fresh("colour")
    rgb = ISPRS_COLOURS[good["4"]]
    rgb[0, 0] = (9, 9, 9)
    Image.fromarray(rgb).save(folder / f"{names['4']}.png")
    _expect_error(root, folder, capsys, str(folder / f"{names['4']}.png"), "(9, 9, 9)")


def test_prediction_files_with_upper_case_suffixes_are_found(tmp_path):
    """``X.PNG`` / ``Y.TIF`` (what some tools and file systems write) are the predictions of
    images X and Y, not missing ones; other suffixes are still not predictions."""
    from bicor.prediction_files import match_prediction_files

    for name in ("a.PNG", "b.TIF", "c.Tiff", "d.png", "notes.TXT"):
        (tmp_path / name).write_bytes(b"")
    found = match_prediction_files(tmp_path, ["a", "b", "c", "d"])
    assert [p.name for p in found] == ["a.PNG", "b.TIF", "c.Tiff", "d.png"]


def test_two_images_of_one_stem_are_refused_before_any_file_is_written():
    """Two images named x (in two folders, or x.png and x.tif) would share one prediction
    file: the split is refused, for records and for synthetic ids alike."""
    from types import SimpleNamespace

    from bicor.prediction_files import PredictionFileError, image_stems

    records = [SimpleNamespace(image_path=p) for p in ("top/x.png", "y.png", "mid/x.tif")]
    with pytest.raises(PredictionFileError, match="two images of the split are named x"):
        image_stems(SimpleNamespace(records=records))
    with pytest.raises(PredictionFileError, match="named 7"):
        image_stems(SimpleNamespace(records=None, sample_ids=[7, 8, 7]))
    unique = [SimpleNamespace(image_path=p) for p in ("top/x.png", "y.png")]
    assert image_stems(SimpleNamespace(records=unique)) == ["x", "y"]


def test_written_class_ids_round_trip_as_palette_or_grey_and_are_range_checked(tmp_path):
    from bicor.prediction_files import (
        dataset_palette,
        read_class_prediction,
        write_class_prediction,
    )

    palette = dataset_palette("vaihingen")
    assert palette is not None and dataset_palette("synthetic_seg") is None
    ids = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int64)
    coloured = write_class_prediction(ids, tmp_path / "sub" / "c.png", palette)
    with Image.open(coloured) as image:
        assert image.mode == "P"  # stored values are the ids, shown in the dataset's colours
        assert image.getpalette()[: 3 * 6] == [c for colour in palette.colours for c in colour]
        np.testing.assert_array_equal(np.asarray(image), ids)
    grey = write_class_prediction(ids, tmp_path / "g.png", None)
    with Image.open(grey) as image:
        assert image.mode == "L"
    for path in (coloured, grey):
        got = read_class_prediction(path, num_classes=6, size=(2, 3), palette=None)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, ids)
    # 255 is the largest id a PNG byte holds; 256, -1 and a (H, W, 1) array are refused
    top = write_class_prediction(np.full((2, 2), 255), tmp_path / "top.png", None)
    assert np.asarray(Image.open(top)).max() == 255
    for bad in (np.full((2, 2), 256), np.full((2, 2), -1), np.zeros((2, 2, 1), np.uint8)):
        with pytest.raises(ValueError, match=r"expected \(H, W\) class ids in 0\.\.255"):
            write_class_prediction(bad, tmp_path / "bad.png", None)
    assert not (tmp_path / "bad.png").exists()


def test_read_class_ids_modes_and_the_id_range_at_its_boundary(tmp_path):
    from bicor.prediction_files import PredictionFileError, read_class_prediction

    def read(path, k=6, palette=None):
        return read_class_prediction(path, num_classes=k, size=(2, 3), palette=palette)

    ids = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.uint8)
    # grey + alpha: the class ids are the first band, whatever the alpha holds
    Image.fromarray(np.dstack([ids, np.full_like(ids, 200)]), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read(tmp_path / "la.png"), ids)
    # 16-bit ids above 255 are read as they are (K-1 = 299 is in range, K = 300 is not)
    wide = ids.astype(np.uint16) + 294
    Image.fromarray(wide).save(tmp_path / "wide.png")
    np.testing.assert_array_equal(read(tmp_path / "wide.png", k=300), wide)
    with pytest.raises(PredictionFileError, match=r"0..298, found \[299\] \(1 pixels\)"):
        read(tmp_path / "wide.png", k=299)
    # a negative id (a signed 32-bit TIFF) is out of range too
    signed = ids.astype(np.int32)
    signed[1, 2] = -1
    Image.fromarray(signed, "I").save(tmp_path / "signed.tif")
    with pytest.raises(PredictionFileError, match=r"found \[-1\]"):
        read(tmp_path / "signed.tif")
    # a colour file without a palette, and a float map, are refused, naming the file
    rgb = np.zeros((2, 3, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    with pytest.raises(PredictionFileError, match=r"rgb\.png: a colour prediction needs"):
        read(tmp_path / "rgb.png")
    Image.fromarray(ids.astype(np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(PredictionFileError, match=r"float\.tif: Pillow mode 'F'"):
        read(tmp_path / "float.tif")


def test_matched_files_follow_the_split_order_and_skip_hidden_files(tmp_path):
    from bicor.prediction_files import PredictionFileError, match_prediction_files

    for name in ("b.png", "a.png", "c.tif", ".a.tif", ".hidden.png", "d.jpg"):
        (tmp_path / name).write_bytes(b"")
    found = match_prediction_files(tmp_path, ["c", "a", "b"])
    assert found == [tmp_path / "c.tif", tmp_path / "a.png", tmp_path / "b.png"]
    with pytest.raises(PredictionFileError, match=r"b\.png: no image of the split is named b"):
        match_prediction_files(tmp_path, ["c", "a"])
    with pytest.raises(FileNotFoundError, match="predictions folder does not exist"):
        match_prediction_files(tmp_path / "nowhere", ["a"])
    with pytest.raises(FileNotFoundError, match=r"e\.png: prediction file missing \(1 of 4"):
        match_prediction_files(tmp_path, ["c", "a", "b", "e"])


def test_sample_ids_map_to_their_own_image_stems():
    from types import SimpleNamespace

    from bicor.prediction_files import image_stems, sample_stems

    records = [
        SimpleNamespace(image_path="img/x_RGB.tif", tile_id="t2"),
        SimpleNamespace(image_path="img/y_RGB.tif", tile_id="t1"),
    ]
    assert sample_stems(SimpleNamespace(records=records)) == {"t2": "x_RGB", "t1": "y_RGB"}
    synthetic = SimpleNamespace(sample_ids=["val_00001", "val_00000"])
    assert image_stems(synthetic) == ["val_00001", "val_00000"]
    assert sample_stems(synthetic) == {"val_00001": "val_00001", "val_00000": "val_00000"}
