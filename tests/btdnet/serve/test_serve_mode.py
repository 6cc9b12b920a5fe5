"""The mode ``POST /predict`` picks: an upload more than twice the model's input side goes to
scene mode (said in ``image.mode_note``, with a preview and one box per object); ``tile=none``
forces whole-image mode and the note gives the resize factor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("rasterio")
from fastapi.testclient import TestClient
from serve_fixtures import decode_png, png_bytes

from btdnet.models.variants import build_model
from btdnet.predict.predictor import Predictor
from btdnet.serve.app import create_app
from btdnet.serve.cli import mode_rule_line
from btdnet.serve.service import InferenceService

NOTE = "this model has no presence head: it cannot say absent"


@pytest.fixture(scope="module")
def client():
    torch.manual_seed(0)
    predictor = Predictor(build_model("tiny", pretrained=False), device="cpu", batch_size=4)
    service = InferenceService(predictor)
    with TestClient(create_app(service)) as test_client:
        yield test_client
    service.close()


def _post(client, pixels: np.ndarray, **fields):
    response = client.post(
        "/predict",
        data={"text": "the tanks", **fields},
        files={"image": ("big.png", png_bytes(pixels), "image/png")},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_large_upload_goes_to_scene_mode_and_says_so(client) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (200, 230, 3), dtype=np.uint8)
    answer = _post(client, pixels, preview="true")
    image, got = answer["image"], answer["predictions"][0]
    assert image["mode"] == "scene" and image["mode_forced"] is False
    assert (
        "230x200 pixels, more than 2x the model's 96-pixel input: scene mode"
        in (image["mode_note"])
    )
    assert image["tile"] == 96 and image["tiles"] == 9
    mask = decode_png(got["mask_png"]) == 255
    assert got["area"] == int(mask.sum()) > 0
    assert got["present"] is None and got["present_note"] == NOTE  # no presence head
    assert got["object_count"] == len(got["objects"]) > 0
    assert sum(o["area_pixels"] for o in got["objects"]) == got["area"]
    for item in got["objects"]:
        x1, y1, x2, y2 = item["bbox"]
        assert mask[y1:y2, x1:x2].sum() >= item["area_pixels"]
    preview = decode_png(got["preview_png"])
    assert preview.shape[1] >= 230 and preview.ndim == 3  # the scene, outlined, with strips
    # Forced whole-image mode: the note names the resize factor.
    whole = _post(client, pixels, tile="none")
    assert whole["image"]["mode"] == "whole" and whole["image"]["mode_forced"] is True
    assert "2.4x smaller" in whole["image"]["mode_note"]
    assert whole["predictions"][0]["present"] is None


def test_small_upload_is_whole_without_a_note(client) -> None:
    pixels = np.random.default_rng(4).integers(0, 256, (120, 150, 3), dtype=np.uint8)
    image = _post(client, pixels)["image"]
    assert image["mode"] == "whole" and "mode_note" not in image
    assert image["resize_factor"] == pytest.approx(150 / 96, abs=1e-3)


def test_serve_states_the_rule_on_one_line() -> None:
    line = mode_rule_line(96)
    assert "more than 192 pixels" in line and "tile=none" in line and "\n" not in line


def _four_band_tiff(side: int) -> bytes:
    import io

    import rasterio

    bands = np.stack([np.full((side, side), v, np.uint8) for v in (10, 100, 200, 250)])
    buffer = io.BytesIO()
    profile = {"driver": "GTiff", "height": side, "width": side, "count": 4, "dtype": "uint8"}
    with rasterio.MemoryFile() as memory:
        with memory.open(**profile) as dst:
            dst.write(bands)
        buffer.write(memory.read())
    return buffer.getvalue()


@pytest.mark.parametrize("tile", [None, "auto"], ids=["whole image", "scene"])
def test_bands_field_changes_what_the_model_sees(tile) -> None:
    from btdnet.normalization import IMAGENET_MEAN, IMAGENET_STD

    torch.manual_seed(0)
    tiny = build_model("tiny", pretrained=False)
    seen = []

    class Recording(torch.nn.Module):
        config, tokenizer = tiny.config, tiny.tokenizer

        def forward(self, pixel_values, input_ids, attention_mask):
            mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
            std = torch.tensor(IMAGENET_STD)[:, None, None]
            seen.append(np.rint(((pixel_values[0] * std + mean) * 255)[:, 0, 0].numpy()))
            from types import SimpleNamespace

            logits = torch.full_like(pixel_values[:, :1], -5.0)
            return SimpleNamespace(target_logits=logits, correlation_maps=[])

    service = InferenceService(Predictor(Recording(), device="cpu"))
    fields = {} if tile is None else {"tile": tile}
    files = {"image": ("bgrn.tif", _four_band_tiff(64), "image/tiff")}
    with TestClient(create_app(service)) as client:
        for bands, want in (("", (10, 100, 200)), ("3,2,1", (200, 100, 10)), ("4", (250,) * 3)):
            data = {"text": "the field", "bands": bands, **fields}
            response = client.post("/predict", data=data, files=files)
            assert response.status_code == 200, response.text
            np.testing.assert_array_equal(seen[-1], want)
        response = client.post(
            "/predict", data={"text": "a", "bands": "5,3,2", **fields}, files=files
        )
        assert response.status_code == 400
        assert response.json()["error"] == "bgrn.tif: has 4 bands; bands 5,3,2 asks for band 5"
        response = client.post("/predict", data={"text": "a", "stretch": "gamma"}, files=files)
        assert response.status_code == 400 and "stretch must be one of" in response.json()["error"]
    service.close()
