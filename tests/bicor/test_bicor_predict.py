"""``bicor-predict``: a tiny BiCoR-Seg on a small UTM GeoTIFF writes a georeferenced class map
with the palette, an overlay with a legend and areas equal to the map's counts; tiles blend
to the per-pixel answer across seams; PNG in, palette PNG out; a btdnet checkpoint is refused
in one line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from bicor import build_bicor
from bicor.data.palettes import ISPRS_PALETTE
from bicor.predict.cli import main
from bicor.predict.palette import palette_for
from bicor.predict.scene import SegmentOptions, segment_image
from btdnet.raster.source import SceneSource

rasterio = pytest.importorskip("rasterio")

TRANSFORM = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5400000.0)  # 0.5 m, UTM 33N


def write_geotiff(path: Path, bands: np.ndarray, **extra) -> Path:
    profile = {"driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2]}
    profile.update(count=bands.shape[0], dtype="uint8", crs="EPSG:32633", transform=TRANSFORM)
    with rasterio.open(path, "w", **profile, **extra) as dst:
        dst.write(bands)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_bicor("tiny", num_classes=6, class_names=list(ISPRS_PALETTE.class_names))
    folder = tmp_path_factory.mktemp("bicor") / "best"
    model.save_pretrained(folder)
    return folder


def run(capsys, *args) -> tuple[int, dict | None, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_geotiff_gives_a_georeferenced_class_map_with_palette_and_areas(
    tmp_path, capsys, checkpoint
) -> None:
    bands = np.random.default_rng(0).integers(0, 256, (3, 90, 130), dtype=np.uint8)
    image = write_geotiff(tmp_path / "scene.tif", bands)
    code, record, err = run(
        capsys, "--checkpoint", checkpoint, "--image", image, "--out", tmp_path / "out",
        "--tile", "64", "--overlap", "16", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    assert (record["tiles"], record["tile"], record["overlap"]) == (6, 64, 16)  # 2 x 3 tiles
    with rasterio.open(record["classes"]) as classes:
        assert classes.crs.to_epsg() == 32633 and classes.transform == TRANSFORM
        assert (classes.height, classes.width, classes.nodata) == (90, 130, 255)
        colormap = classes.colormap(1)
        assert [colormap[i][:3] for i in range(6)] == list(ISPRS_PALETTE.colours)
        assert classes.tags()["class_4"] == "car"
        ids = classes.read(1)
    assert ids.max() < 6
    areas = json.loads(Path(record["areas"]).read_text())
    counts = np.bincount(ids.ravel(), minlength=6)
    assert [c["pixels"] for c in areas["classes"]] == counts.tolist()
    assert [c["area_m2"] for c in areas["classes"]] == (counts * 0.25).tolist()
    assert areas["classes"][1] | {"pixels": 0, "fraction": 0, "area_m2": 0} == {
        "id": 1, "name": "building", "colour": "#0000ff", "pixels": 0, "fraction": 0,
        "area_m2": 0,
    }  # fmt: skip
    assert (areas["pixels"], areas["pixels_nodata"], areas["crs_epsg"]) == (90 * 130, 0, 32633)
    overlay = np.asarray(Image.open(record["overlay"]).convert("RGB"))
    assert overlay.shape[0] >= 90 and overlay.shape[1] > 130  # the legend panel on the right
    colour = np.asarray(ISPRS_PALETTE.colours[ids[10, 20]], dtype=np.float64)
    blended = np.round(0.55 * bands[:, 10, 20] + 0.45 * colour)  # the class colour over it
    assert np.abs(overlay[10, 20].astype(np.float64) - blended).max() <= 1


class PixelModel(nn.Module):
    """Per-pixel logits (a 1x1 convolution): the right class map is known pixel by pixel, so
    any seam or weight error of the tiling shows."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, classes, 1)
        self.config = SimpleNamespace(image_size=32)
        self.num_classes = classes

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.conv(pixel_values))


def test_tiles_blend_to_the_per_pixel_answer_and_nodata_stays_nodata(tmp_path) -> None:
    from btdnet.normalization import normalize_array

    bands = np.random.default_rng(4).integers(0, 256, (3, 75, 101), dtype=np.uint8)
    bands[:, 40:50, 60:70] = 0
    image = write_geotiff(tmp_path / "s.tif", bands, nodata=0)
    model = PixelModel()
    strips: dict[int, np.ndarray] = {}
    with SceneSource(image) as source:
        result = segment_image(
            model, source, lambda y, ids, rgb: strips.update({y: ids}), SegmentOptions(overlap=8)
        )
    assert (result.grid.rows.count, result.grid.columns.count) == (3, 4)
    ids = np.concatenate([strips[y] for y in sorted(strips)])
    with torch.no_grad():
        whole = model(normalize_array(bands.transpose(1, 2, 0))[None]).logits[0]
    expected = whole.argmax(0).numpy().astype(np.uint8)
    nodata = (bands == 0).all(axis=0)
    expected[nodata] = 255
    assert np.array_equal(ids, expected)
    assert result.counts[255] == nodata.sum() and result.counts[:3].sum() == ids.size - nodata.sum()


def test_png_input_gives_a_palette_png_of_class_ids(tmp_path, capsys, checkpoint) -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    code, record, err = run(
        capsys, "--checkpoint", checkpoint, "--image", tmp_path / "photo.png",
        "--out", tmp_path / "out", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    assert record["classes"].endswith("photo_classes.png") and not record["georeferenced"]
    classes = Image.open(record["classes"])
    assert classes.mode == "P" and classes.size == (70, 50)
    palette = np.asarray(classes.getpalette()[: 6 * 3]).reshape(6, 3)
    assert palette.tolist() == [list(c) for c in ISPRS_PALETTE.colours]
    ids = np.asarray(classes)
    areas = json.loads(Path(record["areas"]).read_text())
    assert [c["pixels"] for c in areas["classes"]] == np.bincount(ids.ravel(), minlength=6).tolist()
    assert "area_m2" not in areas["classes"][0] and areas["pixel_area_m2"] is None


def test_a_btdnet_checkpoint_is_refused_in_one_line(tmp_path, capsys) -> None:
    folder = tmp_path / "referring"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "btdnet", "config": {}}))
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    code, record, err = run(
        capsys, "--checkpoint", folder, "--image", tmp_path / "a.png", "--out", tmp_path / "o"
    )
    assert code == 2 and record is None
    assert err.count("\n") == 1 and err.startswith("bicor-predict: error: ")
    assert str(folder) in err and "BiCoR-Seg" in err and "btdnet-predict" in err
    assert not (tmp_path / "o").exists()


def test_palette_follows_the_class_names_or_is_generated() -> None:
    assert palette_for(list(ISPRS_PALETTE.class_names)) is ISPRS_PALETTE
    made = palette_for(["water", "land", "cloud"])
    assert made.class_names == ("water", "land", "cloud") and len(set(made.colours)) == 3
    with pytest.raises(ValueError, match="--palette loveda"):
        palette_for(["water", "land"], "loveda")


def test_plain_tiff_keeps_tiff_without_georeference(tmp_path, capsys, checkpoint) -> None:
    path = tmp_path / "plain.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", height=40, width=40, count=3,
                           dtype="uint8") as dst:  # fmt: skip
            dst.write(np.full((3, 40, 40), 90, dtype=np.uint8))
    code, record, err = run(
        capsys, "--checkpoint", checkpoint, "--image", path, "--out", tmp_path / "out"
    )
    assert code == 0, err
    areas = json.loads(Path(record["areas"]).read_text())
    assert areas["pixel_area_m2"] is None and areas["pixels"] == 1600


@pytest.mark.parametrize("plant", ["link", "file", "read-only"])
def test_a_bad_out_folder_is_refused_before_the_model_loads(
    tmp_path, capsys, monkeypatch, plant
) -> None:
    import bicor.models

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(bicor.models, "load_bicor", no_load)
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    elsewhere, out = tmp_path / "elsewhere", tmp_path / "out"
    elsewhere.mkdir()
    if plant == "link":
        out.symlink_to(elsewhere, target_is_directory=True)
        expected = f"{out}: is a symbolic link; refusing to write into it"
    elif plant == "file":
        out.write_text("keep me")
        expected = f"{out}: exists and is not a folder"
    else:
        out.mkdir()
        monkeypatch.setattr("tempfile.mkstemp", _refuse_write)
        expected = f"{out}: output folder is not writable (Permission denied)"
    code, record, err = run(capsys, "--checkpoint", tmp_path / "x", "--image", tmp_path / "a.png",
                            "--out", out)  # fmt: skip
    assert code == 2 and record is None
    assert err.count("\n") == 1 and err.startswith(f"bicor-predict: error: {expected}")
    assert list(elsewhere.iterdir()) == []
    if plant == "file":
        assert out.read_text() == "keep me"


def _refuse_write(*args, **kwargs):
    raise PermissionError(13, "Permission denied")  # as for a non-root user in a read-only folder


@pytest.mark.parametrize("content", [b"", b"hello, not an image"])
def test_an_unreadable_image_is_one_line_exit_2(tmp_path, capsys, checkpoint, content) -> None:
    (tmp_path / "a.png").write_bytes(content)
    code, record, err = run(capsys, "--checkpoint", checkpoint, "--image", tmp_path / "a.png",
                            "--out", tmp_path / "o", "--device", "cpu")  # fmt: skip
    assert code == 2 and record is None
    assert err.count("\n") == 1 and err.startswith(f"bicor-predict: error: {tmp_path / 'a.png'}")
    assert "Traceback" not in err and list((tmp_path / "o").iterdir()) == []
