"""The mode ``btdnet-predict`` picks for an image: scene mode for one more than twice the model's
input side (announced on one line, with a preview), whole-image mode otherwise, and a warning
with the resize factor when whole-image mode is forced on a large image."""

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

from btdnet.colormap import HALO_COLOR, PREDICTION_COLOR
from btdnet.models import build_model
from btdnet.predict import predictor as predictor_module
from btdnet.predict.cli import main
from btdnet.predict.mode import SCENE, WHOLE, choose_mode
from btdnet.predict.predictor import Predictor

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("fiona")

TRANSFORM = rasterio.Affine(1.0, 0.0, 500000.0, 0.0, -1.0, 5400000.0)  # 1 m, UTM 33N
DARK, BRIGHT = 20, 200
# Six tanks of 24 x 24 pixels over a 2048 x 2048 scene, one across a tile seam.
TANKS = [(100, 100), (300, 1500), (1000, 1000), (1600, 200), (1900, 1900), (76, 920)]
SIDE = 24


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny", pretrained=False)


class BrightModel(nn.Module):
    """Target exactly where a pixel is bright (cheap and known pixel by pixel); it keeps the
    first channel values it was given (``seen``) to show what the model sees."""

    def __init__(self, tiny: nn.Module) -> None:
        super().__init__()
        self.config = tiny.config
        self.tokenizer = tiny.tokenizer
        self.seen: list[torch.Tensor] = []

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        self.seen.append(pixel_values[:, :, 0, 0].clone())  # (B, 3) top-left pixel
        logits = 40.0 * pixel_values.mean(dim=1, keepdim=True)  # (B, 1, S, S): >0 when bright
        return SimpleNamespace(target_logits=logits, correlation_maps=[])


@pytest.fixture
def bright(tiny, monkeypatch):
    """``btdnet-predict`` loads a :class:`BrightModel` whatever the checkpoint."""
    model = BrightModel(tiny)

    def load(checkpoint, **options):
        return Predictor(model, device="cpu", batch_size=options.get("batch_size", 8))

    monkeypatch.setattr(predictor_module.Predictor, "from_pretrained", staticmethod(load))
    return model


def four_band_scene(path: Path, side: int = 2048) -> Path:
    """A uint8 B, G, R, NIR GeoTIFF: dark ground, bright square tanks at ``TANKS``."""
    bands = np.full((4, side, side), DARK, dtype=np.uint8)
    for row, column in TANKS:
        bands[:, row : row + SIDE, column : column + SIDE] = BRIGHT
    profile = {"driver": "GTiff", "height": side, "width": side, "count": 4, "dtype": "uint8"}
    with rasterio.open(path, "w", crs="EPSG:32633", transform=TRANSFORM, **profile) as dst:
        dst.write(bands)
    return path


def test_the_rule_is_more_than_twice_the_input_side() -> None:
    assert choose_mode(193, 100, 96).mode == SCENE
    assert choose_mode(192, 192, 96).mode == WHOLE
    forced = choose_mode(400, 300, 96, scene=False)
    assert forced.mode == WHOLE and forced.warning("a.png") is not None
    assert "4.2x smaller" in forced.warning("a.png")
    assert choose_mode(150, 150, 96, scene=False).warning("a.png") is None  # not large
    assert choose_mode(400, 300, 96).announcement("a.png", "--whole-image") is not None
    assert choose_mode(400, 300, 96, scene=True).announcement("a.png", "x") is None  # asked for


def test_large_four_band_scene_goes_to_scene_mode_with_a_preview(
    tmp_path, checkpoint, bright, capsys
) -> None:
    scene = four_band_scene(tmp_path / "s2like.tif")
    out = tmp_path / "out"
    argv = ["--checkpoint", str(checkpoint), "--image", str(scene), "--out", str(out)]
    assert main([*argv, "--text", "the storage tanks", "--no-progress"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "scene mode" in line]
    assert len(lines) == 1 and "2048x2048" in lines[0] and "--whole-image" in lines[0]
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert record["mode"] == SCENE and record["tile"] == 96
    assert record["objects"] == len(TANKS) and record["area_pixels"] == len(TANKS) * SIDE**2
    with open(record["geojson"], encoding="utf-8") as stream:  # one box and area per object
        features = json.load(stream)["features"]
    boxes = sorted(
        tuple(f["properties"][k] for k in ("bbox_y1", "bbox_x1", "bbox_y2", "bbox_x2"))
        for f in features
    )
    assert boxes == sorted((r, c, r + SIDE, c + SIDE) for r, c in TANKS)
    assert {f["properties"]["area_pixels"] for f in features} == {SIDE**2}
    preview = np.asarray(Image.open(record["preview"]).convert("RGB"))  # caption + 1024 + legend
    top = next(r for r in range(preview.shape[0]) if (preview[r, 0] != preview[0, 0]).any())
    body = preview[top : top + 1024].astype(np.int16)  # the scene at half size
    assert body.shape[:2] == (1024, 1024)
    row, column = (v // 2 for v in TANKS[2])  # the tank at (1000, 1000): 12 px at half size
    assert (body[row + 2 : row + 10, column + 2 : column + 10] == BRIGHT).all()  # its own colour
    assert (body[row + 5, column - 1] == PREDICTION_COLOR).all()  # the ring just outside
    assert (body[row + 5, column - 2] == HALO_COLOR).all()
    assert (body[row + 5, column - 8] == DARK).all()  # the ground beyond is untouched


def test_forced_whole_image_on_a_large_image_warns_with_the_factor(
    tmp_path, checkpoint, bright, capsys
) -> None:
    path = tmp_path / "large.png"
    Image.fromarray(np.full((300, 400, 3), DARK, np.uint8)).save(path)
    argv = ["--checkpoint", str(checkpoint), "--image", str(path), "--out", str(tmp_path / "o")]
    assert main([*argv, "--text", "the tanks", "--whole-image"]) == 0
    captured = capsys.readouterr()
    warning = "large.png: whole-image mode resizes 400x300 pixels to the model's 96x96 input"
    assert warning in captured.err and "4.2x smaller" in captured.err
    record = json.loads(captured.out)
    assert record["mode"] == WHOLE and record["mode_forced"] is True
    assert record["resize_factor"] == pytest.approx(400 / 96, abs=1e-3)


def test_small_image_stays_whole_without_a_mode_line(tmp_path, checkpoint, bright, capsys):
    path = tmp_path / "small.png"
    Image.fromarray(np.full((150, 120, 3), DARK, np.uint8)).save(path)
    argv = ["--checkpoint", str(checkpoint), "--image", str(path), "--out", str(tmp_path / "o")]
    assert main([*argv, "--text", "the tank"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["mode"] == WHOLE and not record["mode_forced"]
    assert record["resize_factor"] == pytest.approx(150 / 96, 1e-3)
    assert "scene mode" not in captured.err and "warning" not in captured.err


def test_scene_options_ask_for_scene_mode_and_contradict_whole_image(
    tmp_path, checkpoint, bright, capsys
) -> None:
    path = tmp_path / "small.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        four_band_scene(path, side=120)
    argv = ["--checkpoint", str(checkpoint), "--image", str(path), "--text", "the tank"]
    argv += ["--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*argv, "--overlap", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == SCENE
    assert main([*argv, "--overlap", "8", "--whole-image"]) == 2
    assert "--overlap apply to scene mode" in capsys.readouterr().err
    assert main([*argv, "--tile", "none"]) == 0  # --tile none: whole-image mode
    assert json.loads(capsys.readouterr().out)["mode"] == WHOLE
