"""Scene-scale prediction (``Predictor.predict_scene``, ``btdnet-predict --tile``) on small
GeoTIFFs written here: one tile equals the whole-image answer, an object across a seam is one
polygon, georeference and nodata are kept, interrupted runs resume without redoing rows."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from btdnet.models import build_model
from btdnet.predict.predictor import Predictor
from btdnet.predict.scene.pipeline import SceneStateError
from btdnet.predict.scene.rows import to_uint8_probability
from btdnet.raster.source import NotGeoreferencedWarning
from tests.launch import run_python

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("rasterio.warp")
fiona = pytest.importorskip("fiona")

TRANSFORM = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5400000.0)  # 0.5 m, UTM 33N
BRIGHT, DARK = 200, 20
# An object (rows 30..110, columns 60..130) across both seams of 96-pixel tiles overlapping
# by 16 (tiles start every 80 pixels).
OBJECT = (slice(30, 110), slice(60, 130))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny", pretrained=False)


class BrightModel(nn.Module):
    """Target exactly where a pixel is bright: a model whose answer is known pixel by pixel.

    ``presence=True`` adds a presence logit: "present" when the tile has a bright pixel.
    """

    def __init__(self, tiny: nn.Module, presence: bool = False) -> None:
        super().__init__()
        self.config = tiny.config
        self.tokenizer = tiny.tokenizer
        self.presence = presence
        self.tiles = 0

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        self.tiles += pixel_values.shape[0]
        logits = 40.0 * pixel_values.mean(dim=1, keepdim=True)  # (B, 1, S, S): >0 when bright
        output = SimpleNamespace(target_logits=logits)
        if self.presence:
            output.presence_logits = torch.where((logits > 0).flatten(1).any(1), 10.0, -10.0)
        return output


def scene_pixels(height: int, width: int) -> np.ndarray:
    """uint8 (3, H, W): dark everywhere but the bright OBJECT."""
    bands = np.full((3, height, width), DARK, dtype=np.uint8)
    bands[:, OBJECT[0], OBJECT[1]] = BRIGHT
    return bands


def write_tiff(path: Path, bands: np.ndarray, georeferenced: bool = True, **extra) -> Path:
    profile = {"driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2]}
    profile.update(count=bands.shape[0], dtype=bands.dtype.name, **extra)
    if georeferenced:
        profile.update(crs="EPSG:32633", transform=TRANSFORM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(bands)
    return path


def read_band(path: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as dataset:
            return dataset.read(1)


def features(path: str) -> list[dict]:
    return json.loads(Path(path).read_text())["features"]


# --- equality with the whole-image predictor ---------------------------------------------


@pytest.mark.parametrize(("side", "tile"), [(96, "auto"), (64, 64)])
def test_one_tile_scene_equals_whole_image_prediction(tmp_path, tiny, side, tile) -> None:
    bands = np.random.default_rng(3).integers(0, 256, (3, side, side), dtype=np.uint8)
    path = write_tiff(tmp_path / "one.tif", bands)
    predictor = Predictor(tiny, device="cpu")
    result = predictor.predict_scene(
        path, "the red car", tmp_path / "out", tile=tile, save_probability=True
    )
    predictor.set_image(path)
    whole = predictor.predict("the red car")
    assert result.record["tiles"] == 1
    assert np.array_equal(read_band(result.record["mask_geotiff"]) > 0, whole.mask)
    probability = read_band(result.record["probability_geotiff"])
    assert np.array_equal(probability, to_uint8_probability(whole.probability))
    assert result.record["area_pixels"] == whole.area


# --- seams, georeference, polygons -------------------------------------------------------


def test_object_across_seams_is_one_polygon_in_map_units(tmp_path, tiny) -> None:
    path = write_tiff(tmp_path / "scene.tif", scene_pixels(200, 250))
    predictor = Predictor(BrightModel(tiny), device="cpu", batch_size=2)
    result = predictor.predict_scene(path, "the bright roof", tmp_path / "out", overlap=16)
    record = result.record
    assert (record["tiles"], record["tile"], record["overlap"]) == (9, 96, 16)
    expected = np.zeros((200, 250), dtype=bool)
    expected[OBJECT] = True
    assert np.array_equal(read_band(record["mask_geotiff"]) == 255, expected)
    with rasterio.open(record["mask_geotiff"]) as mask:
        assert mask.crs.to_epsg() == 32633
        assert mask.transform == TRANSFORM
        assert mask.profile["tiled"] and mask.profile["compress"] == "deflate"
    with fiona.open(record["gpkg"]) as layer:  # the GeoPackage keeps the scene's CRS
        (stored,) = list(layer)
        assert layer.crs.to_epsg() == 32633
        assert stored["properties"]["area"] == 80 * 70 * 0.25
        ring = np.array(stored.geometry["coordinates"][0])
    assert ring[:, 0].min() == 500000 + 60 * 0.5 and ring[:, 0].max() == 500000 + 130 * 0.5
    assert ring[:, 1].max() == 5400000 - 30 * 0.5 and ring[:, 1].min() == 5400000 - 110 * 0.5
    collection = json.loads(Path(record["geojson"]).read_text())
    assert "crs" not in collection  # RFC 7946: WGS 84 longitude/latitude
    (feature,) = collection["features"]
    lon, lat = rasterio.warp.transform("EPSG:32633", "EPSG:4326", ring[:, 0], ring[:, 1])
    lonlat = np.array(feature["geometry"]["coordinates"][0])
    assert np.allclose(lonlat, np.stack([lon, lat], axis=1), atol=1e-9)
    assert lonlat[:, 0].min() > 14.9 and lonlat[:, 1].max() < 48.8  # near 15 E, 48.7 N
    assert feature["properties"]["area"] == 80 * 70 * 0.25
    assert feature["properties"]["area_pixels"] == 80 * 70
    assert feature["properties"]["score"] > 0.99
    assert (record["objects"], record["area"]) == (1, 80 * 70 * 0.25)


def test_min_area_and_simplify_apply_to_both_vector_files(tmp_path, tiny) -> None:
    from btdnet.predict.vectors import VectorOptions

    bands = scene_pixels(200, 250)
    bands[:, 150:154, 200:204] = BRIGHT  # a 4 x 4 px speck: 4 m^2
    path = write_tiff(tmp_path / "scene.tif", bands)
    predictor = Predictor(BrightModel(tiny), device="cpu", batch_size=2)
    vectors = VectorOptions(simplify=0.5, min_area=10.0)
    record = predictor.predict_scene(
        path, "roofs", tmp_path / "out", overlap=16, vectors=vectors
    ).record
    assert (record["objects"], record["objects_below_min_area"]) == (1, 1)
    assert record["area_pixels"] == 80 * 70 + 16  # the mask keeps every pixel
    with fiona.open(record["gpkg"]) as layer:
        (stored,) = list(layer)
        assert len(stored.geometry["coordinates"][0]) == 5  # the rectangle's corners
    (feature,) = features(record["geojson"])
    assert feature["properties"]["id"] == 1 and len(feature["geometry"]["coordinates"][0]) == 5


def test_presence_no_target_tiles_are_skipped(tmp_path, tiny) -> None:
    path = write_tiff(tmp_path / "scene.tif", scene_pixels(200, 250))
    model = BrightModel(tiny, presence=True)
    result = Predictor(model, device="cpu").predict_scene(
        path, "roof", tmp_path / "out", overlap=16
    )
    # Tiles (row, column) with a bright pixel: rows 0-1 x columns 0-1 -> 4 of 9 present.
    assert (result.record["tiles_absent"], result.record["tiles_skipped"]) == (5, 5)
    assert result.record["objects"] == 1


def test_gsd_resamples_and_keeps_ground_area(tmp_path, tiny) -> None:
    path = write_tiff(tmp_path / "scene.tif", scene_pixels(200, 250))
    result = Predictor(BrightModel(tiny), device="cpu").predict_scene(
        path, "roof", tmp_path / "out", overlap=16, gsd=1.0
    )
    with rasterio.open(result.record["mask_geotiff"]) as mask:
        assert (mask.height, mask.width) == (100, 125)
        assert mask.transform.a == 1.0 and mask.transform.e == -1.0
    assert result.record["area"] == pytest.approx(80 * 70 * 0.25, rel=0.1)


# --- nodata ------------------------------------------------------------------------------


def test_nodata_value_is_never_target_and_empty_tiles_are_not_run(tmp_path, tiny) -> None:
    bands = np.full((3, 200, 250), BRIGHT, dtype=np.uint8)
    bands[:, :100] = 0  # nodata: every tile of the first row lies in it
    path = write_tiff(tmp_path / "scene.tif", bands, nodata=0)
    model = BrightModel(tiny)
    result = Predictor(model, device="cpu").predict_scene(
        path, "roof", tmp_path / "out", overlap=16
    )
    mask = read_band(result.record["mask_geotiff"]) > 0
    assert not mask[:100].any() and mask[100:].all()
    assert result.record["tiles_nodata"] == 3
    assert model.tiles == result.record["tiles"] - 3


def test_nan_pixels_are_never_target(tmp_path, tiny) -> None:
    values = np.full((3, 120, 130), 100.0, dtype=np.float32)
    values[:, :, :65] = 900.0  # stretched to bright
    values[:, 40:80, 30:90] = np.nan
    path = write_tiff(tmp_path / "float.tif", values)
    result = Predictor(BrightModel(tiny), device="cpu").predict_scene(
        path, "roof", tmp_path / "out", overlap=16
    )
    mask = read_band(result.record["mask_geotiff"]) > 0
    assert not mask[40:80, 30:90].any()
    assert mask[:40, :65].all() and not mask[:, 65:].any()


def test_mask_band_of_a_four_band_uint16_scene_is_never_target(tmp_path, tiny) -> None:
    """Nodata given by a GDAL mask band (not a value), on 4 uint16 bands."""
    values = np.full((4, 140, 150), 200, dtype=np.uint16)
    values[:, :, :75] = 60000  # stretched to bright
    path = write_tiff(tmp_path / "four.tif", values)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as dataset:
        valid = np.full((140, 150), 255, dtype=np.uint8)
        valid[20:60, 10:50] = 0  # masked out, inside the bright half
        dataset.write_mask(valid)
    result = Predictor(BrightModel(tiny), device="cpu").predict_scene(
        path, "roof", tmp_path / "out", overlap=16
    )
    mask = read_band(result.record["mask_geotiff"]) > 0
    assert not mask[20:60, 10:50].any()
    assert mask[:20, :75].all() and mask[60:, :75].all() and not mask[:, 75:].any()


def test_progress_bar_counts_tiles_with_rate_and_eta(tmp_path, tiny, capsys) -> None:
    path = write_tiff(tmp_path / "scene.tif", scene_pixels(150, 170))
    Predictor(BrightModel(tiny), device="cpu").predict_scene(
        path, "roof", tmp_path / "out", overlap=16, progress=True
    )
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "scene.tif" in bar and "4/4" in bar  # 2 x 2 tiles done
    assert "tile/s" in bar or "s/tile" in bar  # the rate
    assert "<" in bar  # elapsed<remaining (the ETA)


def test_help_says_expressions_refer_to_a_tile(capsys) -> None:
    from btdnet.predict.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--tile SIZE|auto" in text and "--overlap" in text and "--save-probability" in text
    assert "the left of a tile, not of the scene" in text


# --- plain TIFF --------------------------------------------------------------------------


def test_plain_tiff_works_in_pixel_coordinates_with_a_warning(tmp_path, tiny) -> None:
    path = write_tiff(tmp_path / "plain.tif", scene_pixels(200, 250), georeferenced=False)
    predictor = Predictor(BrightModel(tiny), device="cpu")
    with pytest.warns(NotGeoreferencedWarning, match="pixel coordinates"):
        result = predictor.predict_scene(path, "roof", tmp_path / "out", overlap=16)
    (feature,) = features(result.record["geojson"])
    ring = np.array(feature["geometry"]["coordinates"][0])
    assert (ring[:, 0].min(), ring[:, 0].max(), ring[:, 1].min(), ring[:, 1].max()) == (
        60,
        130,
        30,
        110,
    )
    assert result.record["area_units"] == "pixel"
    assert result.record["area"] == 80 * 70


# --- resume ------------------------------------------------------------------------------


class Interrupt(Exception):
    """Stands for Ctrl-C in the middle of a run."""


def test_resume_finishes_without_redoing_finished_rows(tmp_path, tiny) -> None:
    path = write_tiff(tmp_path / "scene.tif", scene_pixels(260, 250))  # 4 rows x 3 tiles
    model = BrightModel(tiny)
    predictor = Predictor(model, device="cpu", batch_size=3)  # one batch per row
    reference = predictor.predict_scene(path, "roof", tmp_path / "ref", overlap=16)
    calls = []

    def stop_in_third_row(tiles: int) -> None:
        calls.append(tiles)
        if len(calls) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        predictor.predict_scene(
            path, "roof", tmp_path / "out", overlap=16, on_tiles=stop_in_third_row
        )
    assert sorted(p.name for p in (tmp_path / "out" / "scene.parts").glob("row_*")) == [
        "row_000000.npz",
        "row_000001.npz",
    ]
    with pytest.raises(SceneStateError, match="overlap"):
        predictor.predict_scene(path, "roof", tmp_path / "out", overlap=8, resume=True)
    model.tiles = 0
    resumed = predictor.predict_scene(path, "roof", tmp_path / "out", overlap=16, resume=True)
    assert model.tiles == 6 and resumed.resumed_rows == 2  # rows 2 and 3 only
    assert not (tmp_path / "out" / "scene.parts").exists()
    assert np.array_equal(
        read_band(resumed.record["mask_geotiff"]), read_band(reference.record["mask_geotiff"])
    )
    assert features(resumed.record["geojson"]) == features(reference.record["geojson"])
    model.tiles = 0
    again = predictor.predict_scene(path, "roof", tmp_path / "out", overlap=16, resume=True)
    assert model.tiles == 0 and again.record["objects"] == resumed.record["objects"]


# --- command line ------------------------------------------------------------------------


def test_cli_scene_mode_writes_outputs_and_one_json_line(tmp_path, checkpoint, capsys) -> None:
    from btdnet.predict.cli import main

    path = write_tiff(tmp_path / "scene.tif", scene_pixels(150, 170))
    out = tmp_path / "out"
    argv = ["--checkpoint", str(checkpoint), "--image", str(path), "--text", "roofs"]
    status = main(
        [
            *argv,
            "--out",
            str(out),
            "--tile",
            "auto",
            "--overlap",
            "16",
            "--save-probability",
            "--no-progress",
        ]
    )
    assert status == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    record = json.loads(line)
    assert record["tiles"] == 4 and record["tiles_skipped"] == 0
    for key in ("mask_geotiff", "probability_geotiff", "geojson", "gpkg"):
        assert Path(record[key]).is_file(), key
    assert json.loads((out / "predictions.jsonl").read_text()) == record
    assert not (out / "scene__1_roofs.parts").exists()


def test_cli_scene_options_are_checked(tmp_path, checkpoint, capsys) -> None:
    from btdnet.predict.cli import main

    argv = ["--checkpoint", str(checkpoint), "--image", "x.tif", "--text", "a", "--out"]
    assert main([*argv, str(tmp_path), "--overlap", "8", "--whole-image"]) == 2
    assert "--overlap apply to scene mode" in capsys.readouterr().err
    assert main([*argv, str(tmp_path), "--tile", "64", "--whole-image"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main([*argv, str(tmp_path), "--tile", "big"]) == 2
    assert "--tile must be auto or a number" in capsys.readouterr().err


# --- several processes -------------------------------------------------------------------

_TWO_PROCESS_SCRIPT = """
import torch
from btdnet.models import build_model
from btdnet.predict.predictor import Predictor

torch.manual_seed(0)
predictor = Predictor(build_model("tiny", pretrained=False), device="cpu", batch_size=2)
predictor.predict_scene({image!r}, "the red roofs", {out!r}, overlap=16, save_probability=True)
"""


@pytest.mark.slow
def test_two_processes_give_the_one_process_result(tmp_path) -> None:
    bands = np.random.default_rng(5).integers(0, 256, (3, 230, 200), dtype=np.uint8)
    path = write_tiff(tmp_path / "scene.tif", bands)
    script = tmp_path / "run.py"
    script.write_text(_TWO_PROCESS_SCRIPT.format(image=str(path), out=str(tmp_path / "two")))
    completed = run_python([str(script)], processes=2, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    torch.manual_seed(0)
    predictor = Predictor(build_model("tiny", pretrained=False), device="cpu", batch_size=2)
    one = predictor.predict_scene(
        path, "the red roofs", tmp_path / "one", overlap=16, save_probability=True
    ).record
    two = json.loads((tmp_path / "two" / "scene.json").read_text())
    for key in ("mask_geotiff", "probability_geotiff"):
        assert np.array_equal(read_band(one[key]), read_band(two[key])), key
    assert features(one["geojson"]) == features(two["geojson"])
    assert {k: one[k] for k in ("objects", "area", "tiles")} == {
        k: two[k] for k in ("objects", "area", "tiles")
    }


def test_masks_are_cloud_optimized_with_overviews(tmp_path) -> None:
    from btdnet.predict.scene.writer import to_cog

    bands = np.zeros((1, 1100, 1300), dtype=np.uint8)
    bands[0, 100:700, 200:900] = 255
    source = write_tiff(tmp_path / "plain_tiled.tif", bands, tiled=True)
    target = to_cog(source, tmp_path / "cog.tif", "NEAREST")
    with rasterio.open(target) as cog:
        assert cog.overviews(1) == [2, 4]
        assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert cog.block_shapes == [(512, 512)] and cog.crs.to_epsg() == 32633
        assert np.array_equal(cog.read(1), bands[0])
