"""Closed-set data sets with hostile files: a decompression bomb is refused in one line (never
handed to rasterio to decode in full), and ``check_dataset``'s printed verdict, levels and
meanings are the closed-set check's own, agreeing with its exit status."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bicor.data.check_cli import CLOSED_SET_CHECKS
from bicor.data.errors import ClosedSetDataError
from bicor.data.image_io import read_class_values, read_rgb, read_size
from btdnet.data.check_cli import main as check_main


@pytest.mark.parametrize("reader", [read_rgb, read_class_values, read_size])
def test_a_decompression_bomb_is_refused_not_read_by_rasterio(tmp_path, monkeypatch, reader):
    path = tmp_path / "bomb.tif"
    Image.new("L", (40, 40)).save(path, format="PNG")  # a PNG named .tif: rasterio reads it too
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 px > 2 x 100: a bomb now
    with pytest.raises(ClosedSetDataError) as info:
        reader(path)
    message = str(info.value)
    assert message.startswith(f"{path}: too many pixels") and "decompression bomb" in message
    assert "\n" not in message and "rasterio" not in message


def test_rasterio_fallback_has_the_same_pixel_limit(tmp_path, monkeypatch) -> None:
    pytest.importorskip("rasterio")
    from bicor.data import image_io

    path = tmp_path / "big.tif"
    Image.fromarray(np.zeros((30, 40, 3), dtype=np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ClosedSetDataError, match=r"big\.tif: 40x30 pixels, above the limit"):
        image_io._read_with_rasterio(path, "Pillow could not")


def _loveda_mask(root: Path) -> Path:
    from closed_set_fixtures import write_loveda_fixture

    written = write_loveda_fixture(root)
    number, item = next((k, v) for k, v in written.items() if v["values"] is not None)
    return root / item["split"] / item["domain"] / "masks_png" / f"{number}.png"


@pytest.mark.parametrize(
    ("plant", "status", "verdict", "line"),
    [
        ("missing", 0, ": usable", "warning: 1 x missing_label (a tile's label is absent"),
        ("small", 1, ": NOT usable", "error: 1 x size_mismatch (a label's size differs"),
    ],
)
def test_check_verdict_and_levels_are_the_closed_set_checks(
    tmp_path, capsys, plant, status, verdict, line
) -> None:
    mask = _loveda_mask(tmp_path / "loveda")
    if plant == "missing":
        mask.unlink()  # the loader skips the tile: usable
    else:
        Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(mask)  # the loader refuses it
    argv = ["--dataset", "loveda", "--root", str(tmp_path / "loveda")]
    assert check_main(argv, "check_dataset.py", CLOSED_SET_CHECKS) == status
    out = capsys.readouterr().out.splitlines()
    assert out[-1].endswith(verdict)
    assert any(text.startswith(line) for text in out), out
    assert not any(text.endswith("()") for text in out)
    if plant == "small":  # the file is named once, not twice
        detail = next(text for text in out if str(mask) in text)
        assert detail.count(str(mask)) == 1


@pytest.mark.parametrize(
    ("plant", "problem"),
    [
        (
            "value 6",
            r"masks/train_00000\.png: class ids must be 0\.\.5 or 255 \(ignored\), found 6",
        ),
        ("value 200", r"masks/train_00000\.png: class ids must be 0\.\.5 .*found 200"),
        ("small mask", r"masks/train_00000\.png: mask is 20x30 \(WxH\), its image 32x32"),
        ("empty image", r"images/train_00000\.png: cannot read the image \(empty or not an"),
        ("bomb", r"images/train_00000\.png: cannot read the image \(Image size \(1024 pixels\)"),
    ],
)
def test_synthetic_seg_items_name_the_bad_file(tmp_path, monkeypatch, plant, problem) -> None:
    from bicor.data.synthetic_seg import SyntheticSegDataset, write_synthetic_seg

    write_synthetic_seg(tmp_path, train=1, val=1, size=32)
    mask = tmp_path / "train" / "masks" / "train_00000.png"
    if plant.startswith("value"):
        Image.fromarray(np.full((32, 32), int(plant.split()[1]), dtype=np.uint8)).save(mask)
    elif plant == "small mask":
        Image.fromarray(np.zeros((30, 20), dtype=np.uint8)).save(mask)
    elif plant == "empty image":
        (tmp_path / "train" / "images" / "train_00000.png").write_bytes(b"")
    else:
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 32x32 > 2 x 100: a bomb now
    with pytest.raises(ClosedSetDataError, match=problem) as info:
        SyntheticSegDataset(tmp_path, "train")[0]
    assert "\n" not in str(info.value)
    # the untouched split still loads
    if plant != "bomb":
        kept = np.asarray(Image.open(tmp_path / "val" / "masks" / "val_00000.png"))
        np.testing.assert_array_equal(SyntheticSegDataset(tmp_path, "val")[0]["mask"], kept)


def test_a_bomb_prediction_file_is_one_line(tmp_path, monkeypatch) -> None:
    from bicor.prediction_files import PredictionFileError, read_class_prediction

    path = tmp_path / "top_mosaic_09cm_area2.png"
    Image.fromarray(np.zeros((40, 40), dtype=np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 px > 2 x 100: a bomb now
    with pytest.raises(PredictionFileError) as info:
        read_class_prediction(path, num_classes=6, size=(40, 40), palette=None)
    assert str(info.value) == (
        f"{path}: cannot read the prediction (too many pixels, a decompression bomb?)"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--window=0"], "window must be positive, got 0"),  # was taken as "the default"
        (["--window=48", "--stride=0"], "stride must be positive, got 0"),
        (["--window=48", "--tta-scales", "nan"], "TTA scales must be positive numbers"),
        (["--window=48", "--tta-scales", "inf"], "TTA scales must be positive numbers"),
    ],
)
def test_seg_benchmark_window_options_are_checked(tmp_path, capsys, options, message) -> None:
    import torch

    from bicor.benchmark_cli import main
    from bicor.data.synthetic_seg import write_synthetic_seg
    from bicor.models import build_bicor

    torch.manual_seed(0)
    build_bicor("tiny", num_classes=6, img_size=64, class_names=list("abcdef")).save_pretrained(
        tmp_path / "ckpt"
    )
    write_synthetic_seg(tmp_path / "data", train=1, val=1, size=64)
    argv = ["--checkpoint", str(tmp_path / "ckpt"), "--dataset", "synthetic_seg", "--root"]
    argv += [str(tmp_path / "data"), "--split", "val", "--num-workers", "0", *options]
    assert main(argv, prog="benchmark.py") == 1
    err = capsys.readouterr().err.splitlines()
    err = [line for line in err if line.strip() and "%|" not in line]  # no progress bar lines
    assert len(err) == 1 and err[0].startswith(f"benchmark.py: error: {message}")


def test_out_of_memory_is_one_line() -> None:
    from btdnet.evaluation.benchmark_cli import is_out_of_memory

    cpu = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory"
    )
    assert is_out_of_memory(cpu) and is_out_of_memory(RuntimeError("CUDA out of memory."))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
