"""Scene mode with models whose answer is known and that a wrong line would change: tiles that
disagree (so every blending weight shows), an answer that varies smoothly over the scene (so a
seam shows), nodata whose pixels the model WOULD mark, a stretch of many values, and rotated or
non-square pixels (areas, gsd, polygons)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from btdnet.models import build_model
from btdnet.predict.predictor import Predictor
from btdnet.tiling import AxisGrid, ramp

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("fiona")
from btdnet.raster.source import SceneReadError, SceneSource  # noqa: E402

NORTH_UP = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5400000.0)
RED_MEAN, RED_STD = 0.485, 0.229  # ImageNet normalisation of the red band


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny", pretrained=False)


def red_of(pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) normalised pixels -> (B, S, S) red band back in [0, 1]."""
    return (pixel_values[:, 0] * RED_STD + RED_MEAN).clamp(1e-4, 1.0 - 1e-4)


class StubModel(nn.Module):
    """A model with a known answer; ``rule`` maps (B, 3, S, S) pixels to (B, S, S) probability."""

    def __init__(self, tiny: nn.Module, rule) -> None:
        super().__init__()
        self.config, self.tokenizer, self.rule = tiny.config, tiny.tokenizer, rule

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        probability = self.rule(pixel_values).clamp(1e-6, 1.0 - 1e-6)  # (B, S, S)
        return SimpleNamespace(target_logits=torch.logit(probability)[:, None].double())


def tile_constant(pixel_values: torch.Tensor) -> torch.Tensor:
    """Each tile answers one probability everywhere: the red value of its top-left pixel."""
    red = red_of(pixel_values)
    return red[:, :1, :1].expand_as(red)


def pixel_red(pixel_values: torch.Tensor) -> torch.Tensor:
    """Every pixel answers its own red value: tiles agree, the answer varies smoothly."""
    return red_of(pixel_values)


def dark_target(pixel_values: torch.Tensor) -> torch.Tensor:
    """Target where a pixel is dark (black included: what nodata pixels read as)."""
    return torch.sigmoid(-40.0 * pixel_values.mean(dim=1))


def bright_target(pixel_values: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(40.0 * pixel_values.mean(dim=1))


def write_tiff(path: Path, bands: np.ndarray, transform=NORTH_UP, **extra) -> Path:
    profile = {"driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2]}
    profile.update(count=bands.shape[0], dtype=bands.dtype.name, crs="EPSG:32633", **extra)
    profile["transform"] = transform
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def read_band(path: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path) as dataset:
            return dataset.read(1)


def features(path: str) -> list[dict]:
    return json.loads(Path(path).read_text())["features"]


def hand_weight(index: int, count: int, u: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """The module docstring's weights, written out: sin^2 rising over the first ``overlap``
    pixels of every tile but the first, cos^2 falling over the last ``overlap`` of every tile
    but the last, 1 elsewhere (angles at pixel centres: (k + 0.5) / O of a quarter turn)."""
    inside = (u >= 0) & (u < tile)
    weight = np.where(inside, 1.0, 0.0)
    if overlap:
        if index > 0:
            rise = (u >= 0) & (u < overlap)
            weight = np.where(rise, np.sin(0.5 * np.pi * (u + 0.5) / overlap) ** 2, weight)
        if index < count - 1:
            k = u - (tile - overlap)
            fall = (k >= 0) & (k < overlap)
            weight = np.where(fall, np.cos(0.5 * np.pi * (k + 0.5) / overlap) ** 2, weight)
    return weight


# --- weights against their formula ------------------------------------------------------


def test_ramp_values_by_hand() -> None:
    # O = 2: sin^2(pi/8) = (1 - cos(pi/4)) / 2 = 0.146447, sin^2(3 pi/8) = 0.853553
    np.testing.assert_allclose(ramp(2), [0.1464466, 0.8535534], atol=1e-6)
    # O = 1: sin^2(pi/4) = 0.5
    np.testing.assert_allclose(ramp(1), [0.5], atol=1e-7)


@pytest.mark.parametrize(("length", "tile", "overlap"), [(250, 96, 16), (301, 64, 32), (90, 40, 6)])
def test_every_tile_weight_follows_the_formula(length: int, tile: int, overlap: int) -> None:
    axis = AxisGrid(length, tile, overlap)
    u = np.arange(tile)
    for index in range(axis.count):
        expected = hand_weight(index, axis.count, u, tile, overlap)
        np.testing.assert_allclose(axis.weights(index), expected, atol=1e-6, err_msg=str(index))
    assert axis.count >= 3  # a first, a middle and a last tile were checked


# --- blending with tiles that disagree ---------------------------------------------------

STARTS = (0, 80, 160)  # 96-pixel tiles overlapping by 16 over 200 x 250 pixels: 3 x 3 tiles
TILE_VALUES = np.array([[0.1, 0.9, 0.3], [0.7, 0.2, 0.8], [0.4, 0.6, 0.05]])


def blocky_scene() -> np.ndarray:
    """uint8 (3, 200, 250) whose red value at tile (i, j)'s top-left pixel is TILE_VALUES[i, j]
    (the red band is constant on 80-pixel blocks), green and blue mid-grey."""
    red = np.round(TILE_VALUES * 255).astype(np.uint8)
    rows = np.minimum(np.arange(200) // 80, 2)
    columns = np.minimum(np.arange(250) // 80, 2)
    bands = np.full((3, 200, 250), 128, dtype=np.uint8)
    bands[0] = red[rows[:, None], columns[None, :]]
    return bands


def expected_blend(height: int, width: int) -> np.ndarray:
    """float64 (H, W): sum over tiles of weight_y * weight_x * the tile's value."""
    values = np.round(TILE_VALUES * 255) / 255
    total = np.zeros((height, width))
    y, x = np.arange(height), np.arange(width)
    for i, y0 in enumerate(STARTS):
        wy = hand_weight(i, 3, y - y0, 96, 16)
        for j, x0 in enumerate(STARTS):
            wx = hand_weight(j, 3, x - x0, 96, 16)
            total += values[i, j] * wy[:, None] * wx[None, :]
    return total


def test_disagreeing_tiles_are_blended_by_their_weights(tmp_path, tiny) -> None:
    path = write_tiff(tmp_path / "blocks.tif", blocky_scene())
    predictor = Predictor(StubModel(tiny, tile_constant), device="cpu", batch_size=2)
    record = predictor.predict_scene(
        path, "x", tmp_path / "out", overlap=16, save_probability=True
    ).record
    assert (record["tiles"], record["tile"], record["overlap"]) == (9, 96, 16)
    expected = expected_blend(200, 250)
    probability = read_band(record["probability_geotiff"]).astype(np.float64)
    np.testing.assert_allclose(probability, np.round(expected * 255), atol=1)
    mask = read_band(record["mask_geotiff"]) > 0
    clear = np.abs(expected - 0.5) > 0.01
    np.testing.assert_array_equal(mask[clear], expected[clear] > 0.5)
    # inside the shared bands the blend is strictly between the two tiles' values
    assert 0.2 < expected[85, 40] < 0.6 and expected[40, 85] not in (0.1, 0.9)
    assert record["area_pixels"] == int(mask.sum())


# --- a smooth answer: no seam ------------------------------------------------------------


def smooth_scene(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    red = 0.5 + 0.45 * np.sin(x / 23.0) * np.cos(y / 31.0)
    bands = np.full((3, height, width), 128, dtype=np.uint8)
    bands[0] = np.round(red * 255)
    return bands


def test_smooth_answer_is_reproduced_without_seams(tmp_path, tiny) -> None:
    from scipy import ndimage

    bands = smooth_scene(230, 190)  # 3 x 3 tiles, the last ones past the edge
    path = write_tiff(tmp_path / "smooth.tif", bands)
    predictor = Predictor(StubModel(tiny, pixel_red), device="cpu", batch_size=4)
    record = predictor.predict_scene(
        path, "x", tmp_path / "out", overlap=16, save_probability=True
    ).record
    probability = read_band(record["probability_geotiff"]).astype(int)
    np.testing.assert_allclose(probability, bands[0].astype(int), atol=1)
    mask = read_band(record["mask_geotiff"]) > 0
    red = bands[0].astype(float) / 255
    clear = np.abs(red - 0.5) > 0.01
    np.testing.assert_array_equal(mask[clear], red[clear] > 0.5)
    # every object: its pixel count and mean probability (uint8 / 255), field by field
    labels, count = ndimage.label(mask)
    expected = sorted(
        (
            int((labels == k).sum()),
            round(float(probability[labels == k].mean()) / 255, 4),
        )
        for k in range(1, count + 1)
    )
    got = sorted(
        (f["properties"]["area_pixels"], f["properties"]["score"])
        for f in features(record["geojson"])
    )
    assert [g[0] for g in got] == [e[0] for e in expected] and count == record["objects"] > 1
    np.testing.assert_allclose([g[1] for g in got], [e[1] for e in expected], atol=1e-4)
    assert record["area"] == pytest.approx(int(mask.sum()) * 0.25)


# --- nodata the model would mark ---------------------------------------------------------


def test_nodata_pixels_are_dropped_after_the_model_even_when_it_marks_them(tmp_path, tiny):
    """The model marks dark pixels; nodata pixels read as black: only the valid mask applied to
    the model's output keeps them out of the mask."""
    bands = np.full((3, 150, 170), 220, dtype=np.uint8)
    bands[:, 10:60, 20:150] = 0  # nodata (value 0): black, which the model marks
    bands[:, 90:130, 40:100] = 30  # valid and dark: target
    path = write_tiff(tmp_path / "nodata.tif", bands, nodata=0)
    result = Predictor(StubModel(tiny, dark_target), device="cpu").predict_scene(
        path, "x", tmp_path / "out", overlap=16, save_probability=True
    )
    expected = np.zeros((150, 170), dtype=bool)
    expected[90:130, 40:100] = True
    np.testing.assert_array_equal(read_band(result.record["mask_geotiff"]) > 0, expected)
    assert not read_band(result.record["probability_geotiff"])[10:60, 20:150].any()
    assert result.record["objects"] == 1 and result.record["tiles_nodata"] == 0


def test_source_reads_nodata_pixels_as_black_and_invalid(tmp_path) -> None:
    bands = np.full((3, 40, 50), 90, dtype=np.uint8)
    bands[:, 5:15, 10:30] = 250  # nodata value 250: bright, what a bright-marking model marks
    path = write_tiff(tmp_path / "bright_nodata.tif", bands, nodata=250)
    with SceneSource(path) as source:
        rgb, valid = source.read(0, 0, 64)
    expected_valid = np.zeros((64, 64), dtype=bool)
    expected_valid[:40, :50] = True
    expected_valid[5:15, 10:30] = False
    np.testing.assert_array_equal(valid, expected_valid)
    assert not rgb[5:15, 10:30].any()
    assert (rgb[:40, :50][expected_valid[:40, :50]] == 90).all()
    # the part past the scene is padded by reflection: (y, x) = (40 + k) reads row 38 - k
    np.testing.assert_array_equal(rgb[41, :50], rgb[38, :50])


def test_nan_in_one_band_makes_the_pixel_invalid(tmp_path, tiny) -> None:
    values = np.stack([np.full((120, 130), v, dtype=np.float32) for v in (900.0, 100.0, 900.0)])
    values[:, :, 65:] = 100.0  # right half dark (stretched to 0)
    values[:, :, :65] = np.array([900.0, 950.0, 900.0], dtype=np.float32)[:, None, None]
    values[1, 40:80, 30:90] = np.nan  # green only: red and blue stay bright there
    path = write_tiff(tmp_path / "nan.tif", values)
    result = Predictor(StubModel(tiny, bright_target), device="cpu").predict_scene(
        path, "x", tmp_path / "out", overlap=16
    )
    mask = read_band(result.record["mask_geotiff"]) > 0
    expected = np.zeros((120, 130), dtype=bool)
    expected[:, :65] = True
    expected[40:80, 30:90] = False
    np.testing.assert_array_equal(mask, expected)
    with SceneSource(path) as source:
        rgb, valid = source.read(0, 0, 130)
    assert not valid[40:80, 30:90].any() and valid[:40].all()
    assert not rgb[40:80, 30:65].any() and rgb[:40, :65].all()


# --- the stretch: many values, masked pixels out of the percentiles ---------------------


def test_stretch_uses_the_valid_pixels_percentiles_band_by_band(tmp_path) -> None:
    """Band 1: columns c = 0..100 hold 1000 + 10 c, twenty valid rows each. Over 2020 valid
    values numpy's 2nd percentile sits at sorted index 0.02 * 2019 = 40.38 -> column 2 (1020),
    the 98th at 1978.62 -> column 98 (1980): v -> round((v - 1020) * 255 / 960), clipped.
    Band 2 is the same ramp reversed, band 3 the ramp times 3. Ten masked rows hold 60000: if
    they counted, the 98th percentile would be 60000 and the valid pixels near black."""
    columns = np.arange(101)
    ramp_values = 1000 + 10 * columns
    bands = np.zeros((3, 30, 101), dtype=np.uint16)
    bands[0, :20] = ramp_values
    bands[1, :20] = ramp_values[::-1]
    bands[2, :20] = 3 * ramp_values
    bands[:, 20:] = 60000
    path = write_tiff(tmp_path / "ramp.tif", bands)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as dataset:
        valid = np.full((30, 101), 255, dtype=np.uint8)
        valid[20:] = 0
        dataset.write_mask(valid)
    with SceneSource(path) as source:
        rgb, valid = source.read(0, 0, 101)

    def stretched(v: np.ndarray, low: float, high: float) -> np.ndarray:
        return np.round(np.clip((v - low) * 255 / (high - low), 0, 255)).astype(np.uint8)

    np.testing.assert_array_equal(rgb[0, :, 0], stretched(ramp_values, 1020, 1980))
    np.testing.assert_array_equal(rgb[7, :, 1], stretched(ramp_values[::-1], 1020, 1980))
    np.testing.assert_array_equal(rgb[19, :, 2], stretched(3 * ramp_values, 3060, 5940))
    assert rgb[0, 50, 0] == 128 and rgb[0, 10, 0] == 21  # (500 - 20) / 960 * 255 = 127.5; 21.25
    assert not valid[20:].any() and valid[:20, :].all() and not rgb[20:30].any()


# --- rotated and non-square pixels -------------------------------------------------------


def object_scene(height: int, width: int) -> np.ndarray:
    bands = np.full((3, height, width), 20, dtype=np.uint8)
    bands[:, 30:110, 60:130] = 200  # 80 x 70 pixels
    return bands


@pytest.mark.parametrize(
    ("transform", "pixel_area"),
    [
        # non-square: 0.5 m across, 2 m down -> 1 m^2 a pixel
        (rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -2.0, 5400000.0), 1.0),
        # rotated: |a e - b d| = |0.3 * -0.3 - 0.4 * 0.4| = 0.25 (a*e alone gives 0.09)
        (rasterio.Affine(0.3, 0.4, 500000.0, 0.4, -0.3, 5400000.0), 0.25),
    ],
    ids=["non-square", "rotated"],
)
def test_area_and_polygon_of_rotated_and_non_square_pixels(
    tmp_path, tiny, transform, pixel_area
) -> None:
    path = write_tiff(tmp_path / "scene.tif", object_scene(150, 170), transform=transform)
    record = (
        Predictor(StubModel(tiny, bright_target), device="cpu")
        .predict_scene(path, "x", tmp_path / "out", overlap=16)
        .record
    )
    assert record["area_pixels"] == 80 * 70
    assert record["area"] == pytest.approx(80 * 70 * pixel_area)
    (feature,) = features(record["geojson"])
    properties = feature["properties"]
    assert properties["area_pixels"] == 80 * 70 and properties["score"] > 0.99
    box = {k: properties[k] for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")}
    assert box == {"bbox_x1": 60, "bbox_y1": 30, "bbox_x2": 130, "bbox_y2": 110}
    assert properties["area"] == pytest.approx(80 * 70 * pixel_area)
    import fiona

    with fiona.open(record["gpkg"]) as layer:  # the scene's CRS (the GeoJSON is WGS 84)
        (stored,) = list(layer)
    ring = {tuple(np.round(p, 6)) for p in stored["geometry"]["coordinates"][0]}
    corners = {tuple(np.round(transform @ (c, r), 6)) for c in (60, 130) for r in (30, 110)}
    assert corners <= ring
    with rasterio.open(record["mask_geotiff"]) as mask:
        assert mask.transform.almost_equals(transform)


def test_gsd_of_non_square_pixels_resamples_each_axis_by_its_own_size(tmp_path) -> None:
    transform = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -1.0, 5400000.0)
    path = write_tiff(tmp_path / "scene.tif", object_scene(150, 170), transform=transform)
    with SceneSource(path) as source:
        assert source.source_gsd == pytest.approx(math.sqrt(0.5))
    with SceneSource(path, gsd=1.0) as source:
        assert (source.height, source.width) == (150, 85)  # 150 * 1 / 1, 170 * 0.5 / 1
        a, b, c, d, e, f = source.geo.transform
        assert (a, b, c, d, e, f) == (1.0, 0.0, 500000.0, 0.0, -1.0, 5400000.0)
    with SceneSource(path, gsd=2.0) as source:
        assert (source.height, source.width) == (75, 42)  # round(42.5) = 42 (half to even)
        rgb, valid = source.read(0, 0, 75)
        assert valid[:, :42].all() and not valid[:, 42:].any()
        # the object (rows 30..110 -> 15..55, columns 60..130 at 0.5 m -> 15..32.5 at 2 m)
        assert (rgb[20:50, 17:31] > 150).all() and (rgb[60:, :] < 60).all()


def test_gsd_is_refused_on_a_rotated_scene(tmp_path) -> None:
    transform = rasterio.Affine(0.3, 0.4, 500000.0, 0.4, -0.3, 5400000.0)
    path = write_tiff(tmp_path / "rotated.tif", object_scene(60, 70), transform=transform)
    with SceneSource(path) as source:
        assert source.source_gsd == pytest.approx(0.5)  # sqrt(0.25)
    with pytest.raises(SceneReadError, match="north-up"):
        SceneSource(path, gsd=1.0)
    with pytest.raises(SceneReadError, match="positive"):
        SceneSource(path, gsd=0.0)
    for sheared in (  # one off-diagonal term alone is enough to refuse
        rasterio.Affine(0.5, 0.2, 500000.0, 0.0, -0.5, 5400000.0),
        rasterio.Affine(0.5, 0.0, 500000.0, 0.2, -0.5, 5400000.0),
    ):
        path = write_tiff(tmp_path / "sheared.tif", object_scene(60, 70), transform=sheared)
        with pytest.raises(SceneReadError, match="north-up"):
            SceneSource(path, gsd=1.0)


# --- decisions at their boundary ---------------------------------------------------------


def half_left(pixel_values: torch.Tensor) -> torch.Tensor:
    """Probability exactly 0.5 on the left half of a tile, 0.75 on the right half."""
    probability = torch.full(pixel_values[:, 0].shape, 0.75, dtype=torch.float64)
    probability[:, :, : probability.shape[-1] // 2] = 0.5
    return probability


class PresenceStub(StubModel):
    """``half_left`` plus a presence logit of exactly 0 (presence 0.5) on every tile."""

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        output = super().forward(pixel_values, input_ids, attention_mask)
        output.presence_logits = torch.zeros(pixel_values.shape[0])
        return output


def test_probability_of_exactly_one_half_is_not_target(tmp_path, tiny) -> None:
    path = write_tiff(tmp_path / "one.tif", np.full((3, 96, 96), 90, dtype=np.uint8))
    record = (
        Predictor(StubModel(tiny, half_left), device="cpu")
        .predict_scene(path, "x", tmp_path / "out", save_probability=True)
        .record
    )
    expected = np.zeros((96, 96), dtype=bool)
    expected[:, 48:] = True
    np.testing.assert_array_equal(read_band(record["mask_geotiff"]) > 0, expected)
    probability = read_band(record["probability_geotiff"])
    assert (probability[:, :48] == 128).all() and (
        probability[:, 48:] == 191
    ).all()  # 127.5, 191.25


def test_one_half_in_the_band_two_rows_share_is_not_target(tmp_path, tiny) -> None:
    """Two rows of tiles (starts 0 and 84) over one column: rows 84..95 are blended from both,
    and 0.5 (1 - w) + 0.5 w is exactly 0.5 in float32."""
    path = write_tiff(tmp_path / "two.tif", np.full((3, 180, 96), 90, dtype=np.uint8))
    record = (
        Predictor(StubModel(tiny, half_left), device="cpu")
        .predict_scene(path, "x", tmp_path / "out", overlap=12)
        .record
    )
    assert record["tiles"] == 2
    expected = np.zeros((180, 96), dtype=bool)
    expected[:, 48:] = True
    np.testing.assert_array_equal(read_band(record["mask_geotiff"]) > 0, expected)


@pytest.mark.parametrize(("threshold", "present"), [(0.5, True), (0.6, False)])
def test_presence_equal_to_the_threshold_is_present(tmp_path, tiny, threshold, present) -> None:
    path = write_tiff(tmp_path / "one.tif", np.full((3, 96, 96), 90, dtype=np.uint8))
    predictor = Predictor(PresenceStub(tiny, half_left), device="cpu", presence_threshold=threshold)
    record = predictor.predict_scene(path, "x", tmp_path / "out").record
    assert record["tiles_absent"] == (0 if present else 1)
    assert record["area_pixels"] == (96 * 48 if present else 0)


# --- a finished run is reused only for the same options ------------------------------------


@pytest.mark.parametrize(
    ("first", "again", "reused"),
    [
        ({"gsd": 1.0}, {"gsd": 1.0}, True),
        ({"gsd": 1.0}, {}, False),
        ({}, {"gsd": 1.0}, False),
        ({"overlap": 16}, {"overlap": 8}, False),
        ({"tile": 96}, {"tile": 64}, False),
        ({"gsd": 0.5}, {}, False),  # the scene's own 0.5 m: the same grid, another option
        ({}, {"save_probability": True}, False),  # the probability was not written the first time
        ({"save_probability": True}, {}, True),
    ],
    ids=[
        "same",
        "gsd-dropped",
        "gsd-added",
        "overlap",
        "tile",
        "gsd-same-grid",
        "probability-asked",
        "probability-there",
    ],
)
def test_resume_reuses_a_finished_scene_only_with_the_same_options(
    tmp_path, tiny, first, again, reused
) -> None:
    path = write_tiff(tmp_path / "scene.tif", object_scene(150, 170))
    predictor = Predictor(StubModel(tiny, bright_target), device="cpu")
    done = predictor.predict_scene(path, "x", tmp_path / "out", **first).record
    tiles = []
    record = predictor.predict_scene(
        path, "x", tmp_path / "out", resume=True, on_tiles=tiles.append, **again
    ).record
    assert (sum(tiles) == 0) == reused
    height = 75 if again.get("gsd") == 1.0 else 150
    assert record["gsd"] == again.get("gsd")
    if again.get("save_probability"):
        assert Path(record["probability_geotiff"]).is_file()
    assert record["height"] == height and read_band(record["mask_geotiff"]).shape[0] == height
    timeless = [{k: v for k, v in r.items() if k != "wall_seconds"} for r in (record, done)]
    assert (timeless[0] == timeless[1]) == reused
