"""Image reading, GeoTIFF/GeoJSON writing, overlays, file names and checkpoint checks of
``btdnet.predict`` (no model needed)."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

from btdnet.colormap import BOX_COLOR, HALO_COLOR, PREDICTION_COLOR, TRUTH_COLOR
from btdnet.errors import CheckpointError
from btdnet.models.serialization import check_model_dir
from btdnet.predict.outputs import output_name, slugify
from btdnet.predict.overlay import (
    _font,
    caption_text,
    inner_contour,
    legend_strip,
    render_overlay,
    wrap_text,
)
from btdnet.predict.vectors import VectorOptions, mask_to_geojson
from btdnet.raster.geo import GeoDependencyError, GeoReference, write_mask_geotiff
from btdnet.raster.image_io import ImageReadError, read_image, stretch_to_uint8

rasterio = pytest.importorskip("rasterio")

TRANSFORM = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5400000.0)  # 0.5 m pixels, UTM 33N


def write_geotiff(path, bands: np.ndarray, crs: str | None = "EPSG:32633", nodata=None) -> None:
    """Write (C, H, W) bands as a GeoTIFF (plain TIFF when ``crs`` is None)."""
    count, height, width = bands.shape
    profile = {"driver": "GTiff", "height": height, "width": width, "count": count}
    profile["dtype"] = str(bands.dtype)
    if crs is not None:
        profile.update(crs=crs, transform=TRANSFORM)
    if nodata is not None:
        profile["nodata"] = nodata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(bands)


def test_png_rgb_grey_and_rgba_read_as_rgb_uint8(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([rgb, np.full((13, 17), 128, np.uint8)])).save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "rgb.png")
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.shape == (13, 17, 3)
    np.testing.assert_array_equal(loaded.pixels, rgb)
    assert loaded.geo is None and (loaded.height, loaded.width) == (13, 17)
    grey = read_image(tmp_path / "grey.png").pixels
    np.testing.assert_array_equal(grey, np.repeat(rgb[:, :, :1], 3, axis=2))
    np.testing.assert_array_equal(read_image(tmp_path / "a.png").pixels, rgb)


def test_jpeg_reads(tmp_path):
    Image.new("RGB", (20, 10), (200, 30, 30)).save(tmp_path / "x.jpg")
    pixels = read_image(tmp_path / "x.jpg").pixels
    assert pixels.shape == (10, 20, 3)
    # a flat colour survives JPEG within a few levels, channels in RGB order
    assert np.abs(pixels.astype(int) - [200, 30, 30]).max() <= 3
    np.testing.assert_array_equal(pixels, np.asarray(Image.open(tmp_path / "x.jpg")))


def test_missing_and_broken_images_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"nope\.png: image file not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="is not a file"):
        read_image(tmp_path)
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ImageReadError, match=r"bad\.png: cannot read image"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match=r"bad\.tif: cannot read image"):
        read_image(tmp_path / "bad.tif")


def test_geotiff_keeps_crs_and_transform(tmp_path):
    bands = np.random.default_rng(1).integers(0, 256, (3, 12, 9), dtype=np.uint8)
    write_geotiff(tmp_path / "geo.tif", bands)
    loaded = read_image(tmp_path / "geo.tif")
    np.testing.assert_array_equal(loaded.pixels, bands.transpose(1, 2, 0))
    assert loaded.geo is not None and loaded.geo.epsg == 32633
    assert loaded.geo.transform == tuple(TRANSFORM)[:6]
    assert loaded.geo.bounds(12, 9) == (500000.0, 5400000.0 - 6.0, 500004.5, 5400000.0)


def test_plain_tiff_has_no_georeference(tmp_path):
    write_geotiff(tmp_path / "plain.tif", np.zeros((3, 5, 6), np.uint8), crs=None)
    assert read_image(tmp_path / "plain.tif").geo is None


def test_multiband_uses_first_three_and_16bit_is_stretched(tmp_path):
    # Bands 0-2 hold the 51 values 0, 80, ..., 4000 (each band in another order); bands 3-4
    # are noise that must not be read. For 51 evenly spaced values the 2nd and 98th
    # percentiles are the 2nd and the 50th value: 80 and 3920, so value v maps to
    # round((v - 80) * 255 / 3840), clipped to 0..255.
    values = np.arange(51, dtype=np.uint16) * 80
    rng = np.random.default_rng(2)
    bands = np.stack(
        [np.roll(values, 7 * c).reshape(3, 17) for c in range(3)]
        + [rng.integers(0, 60000, (3, 17)).astype(np.uint16) for _ in range(2)]
    )  # (5, 3, 17)
    write_geotiff(tmp_path / "ms.tif", bands)
    pixels = read_image(tmp_path / "ms.tif").pixels
    assert pixels.shape == (3, 17, 3) and pixels.dtype == np.uint8
    hand = {0: 0, 80: 0, 1040: 64, 2000: 128, 3920: 255, 4000: 255}  # 63.75 -> 64, 127.5 -> 128
    for channel in range(3):
        band, out = bands[channel], pixels[:, :, channel]
        for value, expected in hand.items():
            assert out[band == value].tolist() == [expected], (channel, value)
        formula = np.clip(np.round((band.astype(float) - 80) * 255 / 3840), 0, 255)
        np.testing.assert_array_equal(out, formula.astype(np.uint8))


def test_stretch_ignores_nodata_and_handles_constant_bands():
    band = np.array([[0, 100, 200], [300, 400, 0]], dtype=np.uint16)
    out = stretch_to_uint8(band, nodata=0)
    assert out[0, 0] == 0 and out[1, 2] == 0 and out[1, 1] == 255
    assert not stretch_to_uint8(np.full((4, 4), 7, np.uint16)).any()


def test_without_rasterio_geotiff_says_how_to_install(tmp_path, monkeypatch):
    write_geotiff(tmp_path / "geo.tif", np.zeros((3, 8, 8), np.uint8))
    write_geotiff(tmp_path / "plain.tif", np.full((3, 8, 8), 9, np.uint8), crs=None)
    monkeypatch.setitem(sys.modules, "rasterio", None)  # import rasterio -> ImportError
    with pytest.raises(GeoDependencyError, match=r"pip install btdnet\[geo\]"):
        read_image(tmp_path / "geo.tif")
    loaded = read_image(tmp_path / "plain.tif")
    assert loaded.geo is None and loaded.pixels.shape == (8, 8, 3)
    assert (loaded.pixels == 9).all()  # read by Pillow alone, values kept
    geo = GeoReference("", tuple(TRANSFORM)[:6])
    with pytest.raises(GeoDependencyError, match=r"pip install btdnet\[geo\]"):
        write_mask_geotiff(tmp_path / "m.tif", np.zeros((8, 8), bool), geo)


def test_geotiff_mask_and_geojson_polygons(tmp_path):
    write_geotiff(tmp_path / "geo.tif", np.zeros((3, 20, 30), np.uint8))
    geo = read_image(tmp_path / "geo.tif").geo
    mask = np.zeros((20, 30), bool)
    mask[2:6, 3:10] = True
    mask[12:19, 20:29] = True
    write_mask_geotiff(tmp_path / "m.tif", mask, geo)
    with rasterio.open(tmp_path / "m.tif") as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform == TRANSFORM
        assert (ds.count, ds.dtypes) == (1, ("uint8",))  # one band: GIS tools show it as is
        np.testing.assert_array_equal(ds.read(), mask[None].astype(np.uint8) * 255)
    native = VectorOptions(geojson_crs="native")
    collection = mask_to_geojson(mask, geo, {"text": "two boxes"}, native)
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 2
    assert collection["crs"]["properties"]["name"].endswith("EPSG::32633")
    min_x, min_y, max_x, max_y = geo.bounds(20, 30)
    first = collection["features"][0]
    assert first["properties"] == {"text": "two boxes"}
    for feature in collection["features"]:
        for x, y in feature["geometry"]["coordinates"][0]:
            assert min_x <= x <= max_x and min_y <= y <= max_y
    ring = np.asarray(first["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == 500000.0 + 3 * 0.5 and ring[:, 1].max() == 5400000.0 - 2 * 0.5
    assert mask_to_geojson(np.zeros((4, 4), bool), geo, None, native)["features"] == []


def test_geo_bounds_of_a_rotated_grid_come_from_all_four_corners():
    # x = 0.8 col + 0.6 row + 100, y = 0.6 col - 0.8 row + 200 (a rotated 1 m grid), 5 x 10:
    # corners (0,0) -> (100, 200), (5,0) -> (104, 203), (0,10) -> (106, 192), (5,10) -> (110, 195)
    geo = GeoReference(crs_wkt="", transform=(0.8, 0.6, 100.0, 0.6, -0.8, 200.0))
    assert geo.bounds(10, 5) == pytest.approx((100.0, 192.0, 110.0, 203.0))


def test_geojson_names_a_crs_without_epsg_code_by_its_wkt_and_omits_an_absent_one():
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    transform = (2.0, 0.0, 100.0, 0.0, -2.0, 200.0)
    wkt = 'LOCAL_CS["site grid",UNIT["metre",1]]'  # a local CRS: no EPSG code
    local = mask_to_geojson(mask, GeoReference(crs_wkt=wkt, transform=transform))
    # a local grid has no way to WGS 84: its own coordinates, named by the crs member
    assert local["crs"] == {"type": "name", "properties": {"name": wkt}}
    # pixel-to-map by hand: column 1 -> x = 100 + 2 * 1, row 1 -> y = 200 - 2 * 1
    ring = np.asarray(local["features"][0]["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == 102.0 and ring[:, 1].max() == 198.0
    bare = mask_to_geojson(mask, GeoReference(crs_wkt="", transform=transform))
    assert "crs" not in bare and len(bare["features"]) == 1


def test_overlay_is_outline_first_with_caption_above_and_legend_below():
    pixels = np.full((60, 90, 3), 40, np.uint8)
    pixels[0, :] = 90  # the image's top row: must stay visible below the caption
    pixels[30:50, 20:60] = (30, 160, 60)  # a green object: it must stay green
    mask = np.zeros((60, 90), bool)
    mask[30:50, 20:60] = True
    truth = np.zeros((60, 90), bool)
    truth[5:15, 70:85] = True  # missed object: outline only
    image = render_overlay(pixels, mask, "the box", bbox=(20, 30, 60, 50), score=0.9, truth=truth)
    out = np.asarray(image)
    k = 6  # ceil(512 / 90): the longer side reaches 512 px
    legend = legend_strip(90 * k, ["prediction", "box", "truth"])
    strip = out.shape[0] - 60 * k - legend.height
    assert out.shape == (60 * k + strip + legend.height, 90 * k, 3) and strip > 0
    assert out[:strip].max() > 200 and np.median(out[:strip]) < 60  # white text on dark strip
    np.testing.assert_array_equal(out[strip + 60 * k :], np.asarray(legend))
    body = out[strip : strip + 60 * k]
    assert (body[: k - 2, 10 * k] == 90).all()  # top row of the image is not covered
    assert (body[55 * k, 80 * k] == 40).all()  # untouched outside mask, truth, box
    # Every pixel of the object keeps its own colour, the edge ones included.
    assert (body[30 * k : 50 * k, 20 * k : 60 * k] == (30, 160, 60)).all()
    assert (body[30 * k - 1, 40 * k] == PREDICTION_COLOR).all()  # the ring just outside
    assert (body[30 * k - 2, 40 * k] == PREDICTION_COLOR).all()  # two pixels wide here
    assert (body[30 * k - 3, 40 * k] == HALO_COLOR).all()  # ... over a dark halo
    assert (body[30 * k - 4, 40 * k] == BOX_COLOR).all()  # the box around both
    assert (body[5 * k, 77 * k] == TRUTH_COLOR).all()  # ground-truth outline
    assert (body[10 * k, 77 * k] == 40).all()  # ... not filled
    big = render_overlay(np.zeros((600, 700, 3), np.uint8), np.zeros((600, 700), bool), "x")
    assert big.width == 700  # large images are not enlarged
    with pytest.raises(ValueError, match="sizes differ"):
        render_overlay(pixels, mask[:10], "x")


def test_overlay_caption_wraps_and_carries_the_iou():
    pixels = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), bool)
    short = render_overlay(pixels, mask, "a", iou=0.5)
    long = render_overlay(pixels, mask, "the long expression " * 12, iou=0.5)
    assert short.width == long.width == 512
    assert long.height > short.height  # more caption lines, the image itself unchanged
    assert caption_text("t", score=0.25) == "t  [score 0.25]"
    assert caption_text("t", found=False, presence=0.1) == "t  [not found, presence 0.10]"


def test_inner_contour_is_the_mask_border():
    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    contour = inner_contour(mask, 1)
    assert contour.sum() == 16 and not contour[3, 3]
    assert inner_contour(np.ones((3, 3), bool), 1).sum() == 8


def test_wrap_text_fits_the_width():
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = _font(14)
    text = "the small white vehicle parked next to the long building " * 3 + "x" * 80
    lines = wrap_text(text, draw, font, 120)
    assert len(lines) > 3
    assert all(draw.textlength(line, font=font) <= 120 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_slug_and_output_names():
    assert slugify("The red car, LEFT!") == "the-red-car-left"
    assert slugify("   ") == "text" and slugify("左边的车") == "text"
    assert slugify("café près du pont") == "cafe-pres-du-pont"
    assert len(slugify("word " * 40)) <= 40 and not slugify("word " * 40).endswith("-")
    assert output_name("/data/scene.v2.tif", 3, "a ship") == "scene.v2__3_a-ship"


def _write_config(folder, model_type: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": model_type, "variant": "tiny", "config": {}}
    (folder / "config.json").write_text(json.dumps(config))


def test_checkpoint_folder_errors(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        check_model_dir(tmp_path / "missing", "btdnet")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        check_model_dir(tmp_path / "file", "btdnet")
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        check_model_dir(tmp_path, "btdnet")
    _write_config(tmp_path / "run" / "checkpoints" / "best", "btdnet")
    with pytest.raises(CheckpointError, match=r"did you mean .*checkpoints[/\\]best"):
        check_model_dir(tmp_path / "run", "btdnet")
    _write_config(tmp_path / "bicor", "bicor")
    (tmp_path / "bicor" / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="BiCoR-Seg closed-set checkpoint"):
        check_model_dir(tmp_path / "bicor", "btdnet")
    _write_config(tmp_path / "noweights", "btdnet")
    with pytest.raises(CheckpointError, match=r"no model\.safetensors"):
        check_model_dir(tmp_path / "noweights", "btdnet")
    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"config\.json: not valid JSON"):
        check_model_dir(tmp_path / "badjson", "btdnet")


def _prediction(present=True, presence=0.912345):
    from btdnet.predict.predictor import summarise

    probability = np.zeros((6, 8), np.float32)
    probability[1:3, 2:5] = 0.876543
    return summarise("the box", probability, False, present=present, presence=presence)


def test_the_json_record_of_a_prediction_field_by_field():
    from btdnet.predict.outputs import prediction_record
    from btdnet.presence import NO_PRESENCE_HEAD

    files = {"mask": "out/a.png", "overlay": "out/a_overlay.png"}
    record = prediction_record("in/scene.png", _prediction(), files)
    assert record == {
        "image": "in/scene.png",
        "text": "the box",
        "score": 0.8765,
        "bbox": [2, 1, 5, 3],
        "area": 6,
        "truncated": False,
        "present": True,
        "presence": 0.9123,
        "mask": "out/a.png",
        "overlay": "out/a_overlay.png",
    }
    absent = prediction_record("in/scene.png", _prediction(present=False, presence=0.1), {})
    assert (absent["present"], absent["bbox"], absent["area"], absent["score"]) == (
        False,
        None,
        0,
        0.0,
    )
    assert "present_note" not in absent and absent["presence"] == 0.1
    headless = prediction_record("x.png", _prediction(present=None, presence=None), {})
    assert headless["present"] is None and headless["presence"] is None
    assert headless["present_note"] == NO_PRESENCE_HEAD


def test_prediction_files_hold_the_mask_and_a_failure_removes_what_was_written(
    tmp_path, monkeypatch
):
    from btdnet.predict import outputs
    from btdnet.raster.image_io import LoadedImage

    prediction = _prediction()
    image = LoadedImage(tmp_path / "scene.png", np.zeros((6, 8, 3), np.uint8))
    files = outputs.write_prediction_files(tmp_path, "scene__0_the-box", image, prediction)
    assert files == {
        "mask": str(tmp_path / "scene__0_the-box.png"),
        "overlay": str(tmp_path / "scene__0_the-box_overlay.png"),
    }
    mask = np.asarray(Image.open(files["mask"]))
    np.testing.assert_array_equal(mask > 0, prediction.mask)

    def broken_overlay(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(outputs, "render_overlay", broken_overlay)
    again = tmp_path / "again"
    again.mkdir()
    with pytest.raises(OSError, match="disk full"):
        outputs.write_prediction_files(again, "b", image, prediction)
    assert list(again.iterdir()) == []  # the mask written before the failure is gone
