"""``bicor-predict`` on hostile input: a huge sparse GeoTIFF of a few kB, superscript tile
sizes, and links planted at its output names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bicor import build_bicor
from bicor.data.palettes import ISPRS_PALETTE
from bicor.predict.cli import main

rasterio = pytest.importorskip("rasterio")
PREFIX = "bicor-predict: error: "


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_bicor("tiny", num_classes=6, class_names=list(ISPRS_PALETTE.class_names))
    folder = tmp_path_factory.mktemp("bicor_hostile") / "best"
    model.save_pretrained(folder)
    return folder


def _run(capsys, *args) -> tuple[int, list[str]]:
    status = main([str(a) for a in args] + ["--no-progress"])
    return status, capsys.readouterr().err.strip().splitlines()


def _sparse(path: Path, side: int) -> Path:
    profile = {"driver": "GTiff", "height": side, "width": side, "count": 3, "dtype": "uint8"}
    profile.update(tiled=True, blockxsize=512, blockysize=512, SPARSE_OK=True)
    with rasterio.open(path, "w", **profile):
        pass
    return path


def test_huge_sparse_image_is_refused_before_any_tile(tmp_path, capsys, checkpoint) -> None:
    image = _sparse(tmp_path / "huge.tif", 60_000)
    out = tmp_path / "out"
    status, err = _run(capsys, "--checkpoint", checkpoint, "--image", image, "--out", out)
    assert status == 2 and not list(out.glob("*"))
    assert err == [
        f"{PREFIX}{image}: the scene has 3,600,000,000 pixels (60000 x 60000), above the limit "
        "of 2,000,000,000; raise --scene-max-pixels (0: no limit) if that much work is meant, "
        "or choose a coarser --gsd"
    ]
    small = _sparse(tmp_path / "small.tif", 200)
    argv = ["--checkpoint", checkpoint, "--image", small, "--out", out]
    status, err = _run(capsys, *argv, "--scene-max-tiles", "2")
    assert status == 2 and "tiles" in err[0] and "above the limit of 2;" in err[0]


def test_superscript_tile_is_one_line(tmp_path, capsys, checkpoint) -> None:
    image = _sparse(tmp_path / "small.tif", 64)
    argv = ["--checkpoint", checkpoint, "--image", image, "--out", tmp_path / "out"]
    status, err = _run(capsys, *argv, "--tile", "¹²⁸")
    assert (status, err) == (2, [f"{PREFIX}tile must be a number of pixels or 'auto', got '¹²⁸'"])


@pytest.mark.parametrize("name", ["small_classes.tif", "small_overlay.png", "small_areas.json"])
def test_link_at_an_output_name_is_refused(tmp_path, capsys, checkpoint, name) -> None:
    image = _sparse(tmp_path / "small.tif", 64)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(notes)
    argv = ["--checkpoint", checkpoint, "--image", image, "--out", out]
    status, err = _run(capsys, *argv)
    assert status == 2 and notes.read_text() == "mine" and (out / name).is_symlink()
    assert len(err) == 1 and "symbolic link" in err[0]
    assert sorted(p.name for p in out.iterdir()) == [name]  # no file of the set was written
