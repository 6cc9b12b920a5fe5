"""Benchmark on hostile prediction files: mis-sized or transposed masks, decompression bombs."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from btdnet.evaluation.prediction_files import (
    MisSizedPredictionWarning,
    read_prediction,
    score_prediction_files,
    write_prediction,
)

REPO = Path(__file__).resolve().parents[3]


class OneSample:
    """A referring dataset of one 10-wide, 6-high image whose target is its left half."""

    def __init__(self) -> None:
        self.records = [SimpleNamespace(sample_id="1-1", category="ship")]

    def __len__(self) -> int:
        return 1

    def original_mask(self, index: int) -> np.ndarray:
        mask = np.zeros((6, 10), dtype=bool)
        mask[:, :5] = True
        return mask


class ResizedSample(OneSample):
    """One 40 x 40 image whose target, 32 columns wide, is 1280 px (medium) at its original
    size but 80 px (small) in the 10 x 10 mask the "lavt" protocol scores."""

    def original_mask(self, index: int) -> np.ndarray:
        mask = np.zeros((40, 40), dtype=bool)
        mask[:, :32] = True
        return mask

    def __getitem__(self, index: int) -> dict:
        return {"mask": self.original_mask(index)[::4, ::4].astype(np.uint8)}


@pytest.mark.parametrize("protocol", ["lavt", "original"])
def test_the_size_bucket_is_the_original_area_under_either_protocol(tmp_path, protocol) -> None:
    write_prediction(ResizedSample().original_mask(0), tmp_path / "1-1.png")
    result = score_prediction_files(ResizedSample(), tmp_path, protocol, strict=True)
    assert result["oIoU"] == 100.0
    assert list(result["per_size"]) == ["medium"] and result["per_size"]["medium"]["samples"] == 1


def test_right_size_scores_silently(tmp_path, recwarn) -> None:
    write_prediction(OneSample().original_mask(0), tmp_path / "1-1.png")
    result = score_prediction_files(OneSample(), tmp_path, "original", strict=True)
    assert result["oIoU"] == 100.0 and result["mis_sized"] == 0
    assert not [w for w in recwarn if issubclass(w.category, MisSizedPredictionWarning)]


def test_transposed_mask_warns_or_is_refused(tmp_path) -> None:
    write_prediction(np.ones((10, 6), dtype=bool), tmp_path / "1-1.png")  # W and H swapped
    with pytest.warns(MisSizedPredictionWarning, match=r"1-1\.png: the mask is 6x10.*transposed"):
        result = score_prediction_files(OneSample(), tmp_path, "original")
    assert result["mis_sized"] == 1
    with pytest.raises(ValueError, match=r"1-1\.png: the mask is 6x10, its image 10x6"):
        score_prediction_files(OneSample(), tmp_path, "original", strict=True)


def test_decompression_bomb_is_one_line(tmp_path, monkeypatch) -> None:
    Image.fromarray(np.zeros((12, 12), dtype=np.uint8)).save(tmp_path / "1-1.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 144 px is a "bomb" now
    with pytest.raises(ValueError, match=r"1-1\.png: cannot read.*decompression bomb") as info:
        read_prediction(tmp_path / "1-1.png")
    assert "\n" not in str(info.value)


def test_benchmark_script_reports_unreadable_file_on_one_line(tmp_path, capsys) -> None:
    from referring_fixtures import write_rrsisd_fixture

    root = tmp_path / "data"
    write_rrsisd_fixture(root)
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "4-14.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    script = runpy.run_path(str(REPO / "scripts" / "benchmark.py"), run_name="script")
    argv = ["--predictions", str(tmp_path / "pred"), "--dataset", "rrsisd", "--root", str(root)]
    assert script["main"]([*argv, "--split", "test"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("benchmark.py: error: ") and "4-14.png" in err[0]


def test_show_heatmaps_bad_checkpoint_is_one_line(tmp_path, capsys) -> None:
    script = runpy.run_path(str(REPO / "scripts" / "show_heatmaps.py"), run_name="script")
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    argv = ["--checkpoint", str(tmp_path / "nope"), "--image", str(tmp_path / "a.png")]
    assert script["main"]([*argv, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("show_heatmaps.py: error: ") and "nope" in err[0]


@pytest.mark.parametrize("kind", ["referring", "closed-set"])
def test_prediction_writers_refuse_a_link_and_leave_no_temp_file(tmp_path, kind) -> None:
    from bicor.prediction_files import write_class_prediction
    from btdnet.safe_write import UnsafeOutputError

    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    folder = tmp_path / "predictions"
    folder.mkdir()
    (folder / "1-1.png").symlink_to(outside)
    mask = OneSample().original_mask(0)
    with pytest.raises(UnsafeOutputError, match=r"1-1\.png: is a symbolic link"):
        if kind == "referring":
            write_prediction(mask, folder / "1-1.png")
        else:
            write_class_prediction(mask.astype(np.uint8), folder / "1-1.png", palette=None)
    assert outside.read_text() == "keep me"
    assert sorted(p.name for p in folder.iterdir()) == ["1-1.png"]
    # a plain destination is written whole, and only the file itself is left
    if kind == "referring":
        write_prediction(mask, folder / "2-1.png")
        assert (read_prediction(folder / "2-1.png") == mask).all()
    else:
        write_class_prediction(mask.astype(np.uint8) * 3, folder / "2-1.png", palette=None)
        assert (np.asarray(Image.open(folder / "2-1.png")) == mask * 3).all()
    assert sorted(p.name for p in folder.iterdir()) == ["1-1.png", "2-1.png"]


def test_prediction_names_modes_and_splits_decided_by_hand(tmp_path) -> None:
    from btdnet.evaluation.prediction_files import (
        check_protocol,
        dataset_split,
        is_generalized_set,
        prediction_filename,
    )

    assert prediction_filename("12-3") == "12-3.png"
    for bad in ("", "a/b", "a\\b", ".", ".."):
        with pytest.raises(ValueError, match="cannot be used as a file name"):
            prediction_filename(bad)
    check_protocol("lavt")
    check_protocol("original")
    with pytest.raises(ValueError, match="unknown evaluation protocol 'LAVT'"):
        check_protocol("LAVT")
    record = SimpleNamespace
    assert dataset_split(SimpleNamespace(split="val", records=[record(split="x")])) == "val"
    assert dataset_split(SimpleNamespace(records=[record(split="test")] * 2)) == "test"
    assert dataset_split(SimpleNamespace(records=[record(split="a"), record(split="b")])) is None
    assert dataset_split(SimpleNamespace(records=[record(split="a"), record()])) is None
    assert dataset_split(SimpleNamespace(records=[])) is None
    assert dataset_split(SimpleNamespace(records=[record(), record()])) is None  # no split
    assert is_generalized_set(SimpleNamespace(stats=SimpleNamespace(no_target=0)))
    assert not is_generalized_set(SimpleNamespace(stats=SimpleNamespace()))
    # any nonzero value is foreground when written; a colour file's alpha is not a mask
    write_prediction(np.array([[0.0, 0.3], [2.0, 0.0]]), tmp_path / "w.png")
    assert np.asarray(Image.open(tmp_path / "w.png")).tolist() == [[0, 255], [255, 0]]
    with pytest.raises(ValueError, match=r"must be \(H, W\)"):
        write_prediction(np.zeros((2, 2, 1)), tmp_path / "bad.png")
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 3] = 255  # opaque black everywhere: nothing marked
    rgba[1, 2, 1] = 9  # one green pixel
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert read_prediction(tmp_path / "rgba.png").tolist() == [[False] * 3, [False, False, True]]
    grey_alpha = np.zeros((2, 3, 2), np.uint8)
    grey_alpha[..., 1] = 255
    grey_alpha[0, 0, 0] = 1
    Image.fromarray(grey_alpha, "LA").save(tmp_path / "la.png")
    assert read_prediction(tmp_path / "la.png").tolist() == [[True, False, False], [False] * 3]
    # resized by nearest: a 2 x 2 checkerboard doubled to 4 x 4 keeps its blocks
    write_prediction(np.array([[1, 0], [0, 1]]), tmp_path / "c.png")
    big = read_prediction(tmp_path / "c.png", size=(4, 4))
    assert big.tolist() == [[True, True, False, False]] * 2 + [[False, False, True, True]] * 2


def test_a_prediction_at_the_scored_size_is_not_at_the_images_size(tmp_path) -> None:
    # under "lavt" the ground truth is 10 x 10, but a prediction file is checked against its
    # image's 40 x 40: one written at 10 x 10 is mis-sized (refused with --strict)
    write_prediction(ResizedSample()[0]["mask"] != 0, tmp_path / "1-1.png")
    with pytest.raises(ValueError, match="the mask is 10x10, its image 40x40"):
        score_prediction_files(ResizedSample(), tmp_path, "lavt", strict=True)
    with pytest.warns(MisSizedPredictionWarning):
        result = score_prediction_files(ResizedSample(), tmp_path, "lavt")
    assert result["mis_sized"] == 1 and result["oIoU"] == 100.0
