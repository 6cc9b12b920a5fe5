"""The page in a real browser: headless Chromium uploads an image, types prompts, sees results.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them when missing)
and selenium; skipped with the reason when they are absent. The server listens on 127.0.0.1
only and the browser runs with a fresh profile and background networking off.
"""

from __future__ import annotations

import base64
import io
import os

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
selenium = pytest.importorskip("selenium")
import torch
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from serve_fixtures import live_server

from btdnet.colormap import BOX_COLOR, PREDICTION_COLOR
from btdnet.predict.overlay import dilate
from btdnet.predict.predictor import Predictor
from btdnet.serve.app import create_app
from btdnet.serve.browser import CHROMEDRIVER, CHROMIUM, chromium_available, headless_chromium
from btdnet.serve.service import InferenceService

if not chromium_available():
    message = f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
    if os.environ.get("BTDNET_REQUIRE_BROWSER") == "1":  # set by .ci/run: never skip in CI
        raise RuntimeError(message)
    pytest.skip(message, allow_module_level=True)
# Two flat coloured halves: the drawn colours over them are easy to tell apart.
IMAGE = np.concatenate(
    [np.full((50, 35, 3), (60, 90, 30), np.uint8), np.full((50, 35, 3), (200, 150, 120), np.uint8)],
    axis=1,
)
SEEN = np.ascontiguousarray(IMAGE[..., ::-1])  # what the model sees with bands 3,2,1


def _half_mask_predictor(checkpoint) -> Predictor:
    """The tiny random model, its output bias shifted so that about half the image is masked
    (a random model marks nearly every pixel, which would make the overlay check empty)."""
    predictor = Predictor.from_pretrained(checkpoint, device="cpu")
    predictor.set_image(SEEN)
    probability = predictor.predict("the red car").probability.astype(np.float64)
    logits = np.log(probability / (1.0 - probability))
    with torch.no_grad():
        predictor.model.decoder.target_head.bias -= float(np.median(logits))
    return predictor


def _canvas_pixels(driver, canvas) -> np.ndarray:
    url = driver.execute_script("return arguments[0].toDataURL('image/png');", canvas)
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def test_page_in_headless_chromium(checkpoint, tmp_path):
    image_path = tmp_path / "two halves.png"
    Image.fromarray(IMAGE).save(image_path)
    texts = ["the red car at the top", "the white ship"]
    predictor = _half_mask_predictor(checkpoint)
    predictor.set_image(SEEN)  # the page asks for bands 3,2,1
    expected = predictor.predict(texts)
    assert all(0 < p.area < IMAGE.shape[0] * IMAGE.shape[1] for p in expected)
    service = InferenceService(predictor, info={"variant": "tiny", "image_size": 96})
    driver = None
    try:
        with live_server(create_app(service)) as base:
            driver = headless_chromium(tmp_path / "profile")
            driver.get(base + "/")
            wait = WebDriverWait(driver, 60)
            wait.until(lambda d: "tiny" in d.find_element(By.ID, "model").text)
            driver.find_element(By.ID, "image").send_keys(str(image_path))
            driver.find_element(By.ID, "texts").send_keys("\n".join(texts))
            driver.find_element(By.ID, "bands").send_keys("3,2,1")
            driver.find_element(By.ID, "submit").click()
            wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("done"))
            assert driver.find_element(By.ID, "error").text == ""
            cards = driver.find_elements(By.CSS_SELECTOR, "#results .card")
            assert [c.find_element(By.TAG_NAME, "h2").text for c in cards] == texts
            for card, want in zip(cards, expected):
                _check_card(driver, card, want)
            mode = driver.find_element(By.ID, "mode-used").text
            assert mode == "whole image: 70x50 resized to 96x96 (factor 0.729)"
            legend = driver.find_element(By.ID, "legend")
            assert "predicted object (ring outside it)" in legend.text
            swatches = legend.find_elements(By.CLASS_NAME, "swatch")
            colors = [s.value_of_css_property("border-top-color") for s in swatches]
            assert colors == [_css(PREDICTION_COLOR), _css(BOX_COLOR)]
            driver.save_screenshot(str(tmp_path / "page.png"))
    finally:
        if driver is not None:
            driver.quit()
        service.close()
    assert (tmp_path / "page.png").stat().st_size > 0


def _css(color) -> str:
    return "rgba({}, {}, {}, 1)".format(*color)


def _check_card(driver, card, want) -> None:
    facts = card.find_element(By.CLASS_NAME, "facts").text
    assert f"score {want.score:.3f}" in facts and f"area {want.area} px" in facts
    # No presence head: the page neither claims "found" nor "not found".
    assert facts.startswith("best guess (this model cannot tell absence)")
    assert "no presence head" in facts
    pixels = _canvas_pixels(driver, card.find_element(By.TAG_NAME, "canvas"))  # (H, W, 3)
    assert pixels.shape == (50, 70, 3)
    # Outline-first: every pixel of the object keeps its own colour, the ring lies outside.
    assert np.abs(pixels[want.mask] - SEEN[want.mask]).max() <= 1
    ring = dilate(want.mask, 1) & ~want.mask
    assert (pixels[ring] == PREDICTION_COLOR).all()
    far = ~dilate(want.mask, 2)  # beyond ring and halo: untouched except by the box
    box = (pixels == BOX_COLOR).all(axis=-1)
    assert np.abs(pixels[far & ~box] - SEEN[far & ~box]).max() <= 1
    heat = card.find_elements(By.CSS_SELECTOR, ".heat img")
    assert len(heat) == len(want.correlation)
    assert all(driver.execute_script("return arguments[0].naturalWidth;", h) > 0 for h in heat)
    link = card.find_element(By.LINK_TEXT, "mask PNG")
    assert link.get_attribute("download").endswith("__1.png") or link.get_attribute(
        "download"
    ).endswith("__2.png")
    mask = Image.open(io.BytesIO(base64.b64decode(link.get_attribute("href").split(",", 1)[1])))
    np.testing.assert_array_equal(np.asarray(mask) == 255, want.mask)


def test_scene_request_shows_the_preview_and_the_objects(checkpoint, tmp_path):
    image_path = tmp_path / "large.png"
    pixels = np.random.default_rng(7).integers(0, 256, (200, 230, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image_path)  # more than 2x the 96-px input: scene mode
    predictor = Predictor.from_pretrained(checkpoint, device="cpu")
    service = InferenceService(predictor, info={"variant": "tiny", "image_size": 96})
    driver = None
    try:
        with live_server(create_app(service)) as base:
            driver = headless_chromium(tmp_path / "profile")
            driver.get(base + "/")
            wait = WebDriverWait(driver, 60)
            wait.until(lambda d: "tiny" in d.find_element(By.ID, "model").text)
            driver.find_element(By.ID, "image").send_keys(str(image_path))
            driver.find_element(By.ID, "texts").send_keys("the storage tanks")
            driver.find_element(By.ID, "submit").click()
            wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("done"))
            assert driver.find_element(By.ID, "error").text == ""
            mode = driver.find_element(By.ID, "mode-used").text
            assert "230x200 pixels, more than 2x the model's 96-pixel input: scene mode" in mode
            (card,) = driver.find_elements(By.CSS_SELECTOR, "#results .card")
            preview = card.find_element(By.CSS_SELECTOR, "img.preview")
            assert driver.execute_script("return arguments[0].naturalWidth;", preview) >= 230
            facts = card.find_element(By.CLASS_NAME, "facts").text
            assert facts.startswith("best guess (this model cannot tell absence)")
            assert "9 tiles" in facts
            objects = card.find_elements(By.CSS_SELECTOR, ".objects li")
            assert objects and f"{len(objects)} object(s)" in facts
            assert all(item.text.startswith("box [") for item in objects)
            # Whole-image mode chosen on the page: the page says how much it shrank.
            driver.find_element(By.CSS_SELECTOR, "#mode option[value='none']").click()
            driver.find_element(By.ID, "submit").click()
            wait.until(lambda d: "2.4x smaller" in d.find_element(By.ID, "mode-used").text)
    finally:
        if driver is not None:
            driver.quit()
        service.close()
