"""The scene pipeline's record: ``--resume`` never hands back outputs written under other
vector options, and ``present`` of a model without a presence head is None (it cannot say
absent), never False."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from btdnet.models import build_model
from btdnet.predict.predictor import Predictor
from btdnet.presence import NO_PRESENCE_HEAD

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("fiona")
pytest.importorskip("shapely")
from btdnet.predict.vectors import VectorOptions  # noqa: E402

NORTH_UP = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5400000.0)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny", pretrained=False)


class BrightModel(nn.Module):
    """Target exactly where a pixel is bright; ``presence``: a head that says present."""

    def __init__(self, tiny: nn.Module, presence: bool = False) -> None:
        super().__init__()
        self.config, self.tokenizer, self.presence = tiny.config, tiny.tokenizer, presence
        self.presence_head = nn.Identity() if presence else None  # what the predictor asks

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        logits = 40.0 * pixel_values.mean(dim=1, keepdim=True)  # (B, 1, S, S): >0 when bright
        output = SimpleNamespace(target_logits=logits)
        if self.presence:
            output.presence_logits = torch.full((pixel_values.shape[0],), 10.0)
        return output


def write_scene(path: Path, bright: bool) -> Path:
    bands = np.full((3, 120, 130), 20, dtype=np.uint8)
    if bright:
        bands[:, 30:70, 40:90] = 230  # one object: 40 x 50 pixels, 20 x 25 m = 500 m^2
    profile = {"driver": "GTiff", "height": 120, "width": 130, "count": 3, "dtype": "uint8"}
    with rasterio.open(path, "w", crs="EPSG:32633", transform=NORTH_UP, **profile) as dst:
        dst.write(bands)
    return path


def test_resume_with_other_vector_options_rewrites_the_polygons(tmp_path, tiny) -> None:
    path = write_scene(tmp_path / "scene.tif", bright=True)
    predictor = Predictor(BrightModel(tiny), device="cpu")
    first = predictor.predict_scene(path, "roof", tmp_path / "out")
    assert (first.record["objects"], first.record["objects_below_min_area"]) == (1, 0)
    again = predictor.predict_scene(
        path, "roof", tmp_path / "out", resume=True, vectors=VectorOptions(min_area=600.0)
    )
    assert not again.reused
    record = again.record
    assert (record["objects"], record["objects_below_min_area"]) == (0, 1)
    assert record["vectors"]["min_area"] == 600.0
    assert json.loads(Path(record["geojson"]).read_text())["features"] == []
    assert record["area_pixels"] == 40 * 50  # the mask is the model's answer, unfiltered
    same = predictor.predict_scene(
        path, "roof", tmp_path / "out", resume=True, vectors=VectorOptions(min_area=600.0)
    )
    assert same.reused and same.record["objects"] == 0


@pytest.mark.parametrize("bright", [True, False], ids=["object", "nothing"])
def test_present_without_a_presence_head_is_none_with_its_note(tmp_path, tiny, bright) -> None:
    path = write_scene(tmp_path / "scene.tif", bright=bright)
    record = Predictor(BrightModel(tiny), device="cpu").predict_scene(path, "x", tmp_path).record
    assert record["present"] is None and record["present_note"] == NO_PRESENCE_HEAD
    assert record["presence_head"] is False
    assert record["area_pixels"] == (40 * 50 if bright else 0)


@pytest.mark.parametrize("bright", [True, False], ids=["object", "nothing"])
def test_present_with_a_head_needs_pixels(tmp_path, tiny, bright) -> None:
    # the head says present on every tile: only a mask with pixels makes the answer present
    path = write_scene(tmp_path / "scene.tif", bright=bright)
    model = BrightModel(tiny, presence=True)
    record = Predictor(model, device="cpu").predict_scene(path, "x", tmp_path).record
    assert record["present"] is bright and "present_note" not in record
    assert record["tiles_absent"] == 0


class BrightPresence(BrightModel):
    """Target where bright; the presence head says present only on a tile with a bright
    pixel (absent elsewhere)."""

    def __init__(self, tiny: nn.Module) -> None:
        super().__init__(tiny, presence=True)

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        output = super().forward(pixel_values, input_ids, attention_mask)
        bright = output.target_logits.amax(dim=(1, 2, 3)) > 0  # (B,)
        output.presence_logits = torch.where(bright, 10.0, -10.0)
        return output


def test_the_record_counts_no_data_and_absent_tiles_apart_and_together(tmp_path, tiny) -> None:
    # 120 x 130, tiles of 64 overlapping by 8: rows start at 0, 56; columns at 0, 56, 112.
    # Tile (0, 0) is all nodata (not run); the bright 30 x 30 square (rows 80..109, columns
    # 90..119) lies in tiles (1, 1) and (1, 2); the other three tiles are absent.
    bands = np.full((3, 120, 130), 20, dtype=np.uint8)
    bands[:, :64, :64] = 0
    bands[:, 80:110, 90:120] = 230
    profile = {"driver": "GTiff", "height": 120, "width": 130, "count": 3, "dtype": "uint8"}
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", crs="EPSG:32633", transform=NORTH_UP, nodata=0, **profile) as d:
        d.write(bands)
    predictor = Predictor(BrightPresence(tiny), device="cpu")
    result = predictor.predict_scene(path, "  the roof  ", tmp_path / "out", tile=64, overlap=8)
    record = result.record
    assert (record["tiles"], record["tiles_nodata"], record["tiles_absent"]) == (6, 1, 3)
    assert record["tiles_skipped"] == 4
    assert record["area_pixels"] == 900 and record["area"] == 900 * 0.25
    assert record["area_units"] == "map" and record["mode"] == "scene"
    assert record["text"] == "the roof" and record["truncated"] is False
    assert (record["height"], record["width"], record["tile"], record["overlap"]) == (
        120,
        130,
        64,
        8,
    )
    assert record["gsd"] is None and record["objects"] == 1 and record["present"] is True
    assert record["presence_head"] is True
    assert record["image"] == str(path) and record["image_relative"] == "../scene.tif"
    assert record["wall_seconds"] >= 0 and len(record["run_key"]) == 32
    out = tmp_path / "out"
    assert result.files == {
        "mask_geotiff": str(out / "scene.tif"),
        "geojson": str(out / "scene.geojson"),
        "gpkg": str(out / "scene.gpkg"),
        "preview": str(out / "scene_preview.png"),
    }
    assert not (out / "scene.parts").exists()  # the parts go once the outputs are written


def test_a_finished_scene_is_reused_only_with_the_same_bands_and_stretch(tmp_path, tiny) -> None:
    from btdnet.raster.bands import Stretch

    path = write_scene(tmp_path / "scene.tif", bright=True)
    predictor = Predictor(BrightModel(tiny), device="cpu")
    first = predictor.predict_scene(path, "roof", tmp_path / "out")
    assert not first.reused
    same = predictor.predict_scene(path, "roof", tmp_path / "out", resume=True)
    assert same.reused and same.record["run_key"] == first.record["run_key"]
    other_bands = predictor.predict_scene(
        path, "roof", tmp_path / "out", resume=True, bands=(3, 2, 1)
    )
    assert not other_bands.reused and other_bands.record["run_key"] != first.record["run_key"]
    other_stretch = predictor.predict_scene(
        path, "roof", tmp_path / "out", resume=True, bands=(3, 2, 1), stretch=Stretch("none")
    )
    assert not other_stretch.reused
    assert other_stretch.record["run_key"] != other_bands.record["run_key"]
