"""``--bands`` and ``--stretch``: which bands the model sees and how their values become 0..255,
the same for a whole image and for the tiles of a scene."""

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
from btdnet.normalization import IMAGENET_MEAN, IMAGENET_STD
from btdnet.predict import predictor as predictor_module
from btdnet.predict.cli import main
from btdnet.predict.predictor import Predictor
from btdnet.raster.bands import BandsError, Stretch, parse_bands, parse_stretch
from btdnet.raster.image_io import read_image
from btdnet.raster.source import SceneSource

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("fiona")

BAND_VALUES = (10, 100, 200, 250)  # B, G, R, NIR: one constant value per band


class RecordingModel(nn.Module):
    """Keeps the first pixel of every image it is given, as 0..255 values."""

    def __init__(self, tiny: nn.Module) -> None:
        super().__init__()
        self.config, self.tokenizer = tiny.config, tiny.tokenizer
        self.seen: list[np.ndarray] = []

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        mean = torch.tensor(IMAGENET_MEAN)[None, :, None, None]
        std = torch.tensor(IMAGENET_STD)[None, :, None, None]
        values = (pixel_values * std + mean) * 255.0  # (B, 3, S, S) back to 0..255
        self.seen.extend(np.rint(values[:, :, 0, 0].numpy()).astype(int))
        logits = torch.full_like(pixel_values[:, :1], -5.0)
        return SimpleNamespace(target_logits=logits, correlation_maps=[])


@pytest.fixture
def recording(monkeypatch):
    torch.manual_seed(0)
    model = RecordingModel(build_model("tiny", pretrained=False))

    def load(checkpoint, **options):
        return Predictor(model, device="cpu")

    monkeypatch.setattr(predictor_module.Predictor, "from_pretrained", staticmethod(load))
    return model


def write_tiff(path: Path, bands: np.ndarray) -> Path:
    profile = {"driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", count=len(bands), dtype=bands.dtype.name, **profile) as dst:
            dst.write(bands)
    return path


def four_bands(path: Path, side: int = 64) -> Path:
    bands = np.stack([np.full((side, side), v, np.uint8) for v in BAND_VALUES])
    return write_tiff(path, bands)


@pytest.mark.parametrize("scene", [False, True], ids=["whole image", "scene"])
def test_bands_change_what_the_model_sees(tmp_path, checkpoint, recording, scene) -> None:
    image = four_bands(tmp_path / "bgrn.tif")
    argv = ["--checkpoint", str(checkpoint), "--image", str(image), "--text", "the field"]
    argv += ["--no-progress"] + (["--tile", "auto"] if scene else [])
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    first = recording.seen[-1]
    np.testing.assert_array_equal(first, BAND_VALUES[:3])  # default: bands 1, 2, 3 as R, G, B
    assert main([*argv, "--out", str(tmp_path / "b"), "--bands", "3,2,1"]) == 0
    np.testing.assert_array_equal(recording.seen[-1], (200, 100, 10))  # R, G, B of a BGR file
    assert main([*argv, "--out", str(tmp_path / "c"), "--bands", "4,3,2"]) == 0
    np.testing.assert_array_equal(recording.seen[-1], (250, 200, 100))  # false colour, NIR red
    assert main([*argv, "--out", str(tmp_path / "d"), "--bands", "4"]) == 0
    np.testing.assert_array_equal(recording.seen[-1], (250, 250, 250))  # one band: grey


def test_a_band_the_file_lacks_is_one_line(tmp_path, checkpoint, recording, capsys) -> None:
    image = four_bands(tmp_path / "bgrn.tif")
    argv = ["--checkpoint", str(checkpoint), "--image", str(image), "--text", "the field"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--bands", "5,3,2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bgrn.tif: has 4 bands; bands 5,3,2 asks for band 5" in err
    assert main([*argv, "--out", str(tmp_path / "o"), "--bands", "0,1,2"]) == 2
    assert "band numbers start at 1" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "o"), "--stretch", "minmax:9,1"]) == 2
    assert "LOW must be below HIGH" in capsys.readouterr().err


def test_whole_image_and_scene_tiles_share_one_stretch(tmp_path) -> None:
    rng = np.random.default_rng(0)
    bands = rng.integers(0, 4000, (4, 40, 1500), dtype=np.uint16)  # decimated for percentiles
    bands[2, :, :700] += 3000
    path = write_tiff(tmp_path / "wide.tif", bands)
    for stretch in (Stretch(), parse_stretch("percentile:5,95"), parse_stretch("minmax:0,5000")):
        whole = read_image(path, bands=(3, 2, 1), stretch=stretch).pixels  # (40, 1500, 3)
        with SceneSource(path, bands=(3, 2, 1), stretch=stretch) as source:
            window, valid = source.read(0, 600, 64)  # a tile across the bright edge of band 3
        assert valid[:40].all()
        np.testing.assert_array_equal(window[:40], whole[:, 600:664])


def test_stretch_rules_on_known_values(tmp_path) -> None:
    bands = np.array([[[0, 500, 1000, 3000]]] * 3, dtype=np.uint16)  # (3, 1, 4)
    path = write_tiff(tmp_path / "ramp.tif", bands)
    fixed = read_image(path, stretch=parse_stretch("minmax:0,1000")).pixels[0, :, 0]
    np.testing.assert_array_equal(fixed, [0, 128, 255, 255])  # 500 of 0..1000 -> 127.5 -> 128
    none = read_image(path, stretch=parse_stretch("none")).pixels[0, :, 0]
    np.testing.assert_array_equal(none, [0, 255, 255, 255])  # as they are, clipped
    eight = write_tiff(tmp_path / "eight.tif", np.array([[[50, 60, 70, 80]]] * 3, np.uint8))
    np.testing.assert_array_equal(read_image(eight).pixels[0, :, 0], [50, 60, 70, 80])  # auto
    spread = read_image(eight, stretch=parse_stretch("percentile:0,100")).pixels[0, :, 0]
    np.testing.assert_array_equal(spread, [0, 85, 170, 255])  # 8-bit stretched when asked


def test_parsing() -> None:
    assert parse_bands("3, 2, 1") == (3, 2, 1) and parse_bands(None) is None
    for bad in ("1,2", "a,b,c", "¹,²,³"):
        with pytest.raises(BandsError):
            parse_bands(bad)
    assert parse_stretch("percentile") == Stretch("percentile", 2.0, 98.0)
    for bad in ("percentile:5", "percentile:-1,50", "gamma", "none:1,2"):
        with pytest.raises(BandsError):
            parse_stretch(bad)


def test_scene_record_and_manifest_keep_the_choice(tmp_path, checkpoint, recording, capsys):
    image = four_bands(tmp_path / "bgrn.tif")
    argv = ["--checkpoint", str(checkpoint), "--image", str(image), "--text", "the field"]
    argv += ["--tile", "auto", "--no-progress", "--out", str(tmp_path / "o")]
    assert main([*argv, "--bands", "4,3,2", "--stretch", "minmax:0,250"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    np.testing.assert_array_equal(recording.seen[-1], (255, 204, 102))  # 250, 200, 100 of 250
    assert record["mode"] == "scene"
