"""The server against hostile requests: a tiny upload that is a huge sparse scene, a scene
that runs long while small requests wait, superscript tile sizes, error bodies of every kind."""

from __future__ import annotations

import io
import threading
import time
import warnings

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
rasterio = pytest.importorskip("rasterio")
from fastapi.testclient import TestClient
from serve_fixtures import decode_png, live_server, png_bytes, random_image

from btdnet.predict.predictor import Predictor
from btdnet.serve.app import create_app
from btdnet.serve.scene_jobs import SceneLimits
from btdnet.serve.service import InferenceService

SMALL = png_bytes(random_image(3, 32, 32))


def sparse_tiff(side: int) -> bytes:
    """A tiled uint8 GeoTIFF of ``side`` x ``side`` pixels with no block written (a few kB)."""
    with rasterio.MemoryFile() as memory:
        profile = {"driver": "GTiff", "height": side, "width": side, "count": 3, "dtype": "uint8"}
        profile.update(tiled=True, blockxsize=512, blockysize=512, SPARSE_OK=True)
        with memory.open(**profile):
            pass
        return memory.read()


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_pretrained(checkpoint, device="cpu")


def test_huge_sparse_scene_is_413_before_any_tile(predictor) -> None:
    data = sparse_tiff(20_000)
    assert len(data) < 100_000
    service = InferenceService(predictor)
    with TestClient(create_app(service)) as client:
        files = {"image": ("sparse.tif", data)}
        response = client.post("/predict", data={"text": "a", "tile": "auto"}, files=files)
    service.close()
    assert response.status_code == 413
    assert response.json() == {
        "error": "sparse.tif: the scene has 400,000,000 pixels (20000 x 20000), above the "
        "limit of 100,000,000; raise the server's --scene-max-pixels (0: no limit) if that "
        "much work is meant, or choose a coarser --gsd"
    }


def test_small_requests_are_answered_while_a_large_scene_runs(predictor) -> None:
    unlimited = SceneLimits(max_pixels=None, max_tiles=None, seconds=10.0)
    service = InferenceService(predictor)
    scene: dict = {}

    def post_scene(base: str) -> None:
        files = {"image": ("sparse.tif", sparse_tiff(20_000))}
        data = {"text": "a roof", "tile": "auto"}
        scene["response"] = httpx.post(f"{base}/predict", data=data, files=files, timeout=60)
        scene["finished"] = time.monotonic()

    with live_server(create_app(service, scene_limits=unlimited)) as base:
        thread = threading.Thread(target=post_scene, args=(base,))
        thread.start()
        deadline = time.monotonic() + 30
        while service.in_flight == 0 and time.monotonic() < deadline:  # the scene has started
            time.sleep(0.02)
        files = {"image": ("small.png", SMALL)}
        small = httpx.post(f"{base}/predict", data={"text": "a car"}, files=files, timeout=25)
        answered = time.monotonic()
        thread.join(timeout=60)
    service.close()
    assert small.status_code == 200
    predictor.set_image(random_image(3, 32, 32))
    expected = predictor.predict("a car")
    assert np.array_equal(decode_png(small.json()["predictions"][0]["mask_png"]) > 0, expected.mask)
    assert answered < scene["finished"]  # answered while the scene was running
    assert scene["response"].status_code == 503
    assert "stopped after 10 s" in scene["response"].json()["error"]


def test_second_scene_beyond_the_scene_queue_is_503(predictor) -> None:
    service = InferenceService(predictor, max_scene_queue=1)
    release = threading.Event()

    class Waiting:
        scene = True

        def run(self, _predictor):
            release.wait(timeout=10)
            return [], {}

    running = service.submit(Waiting())
    with TestClient(create_app(service)) as client:
        files = {"image": ("s.tif", sparse_tiff(64))}
        response = client.post("/predict", data={"text": "a", "tile": "auto"}, files=files)
        assert response.status_code == 503
        assert "1 scene requests are already queued" in response.json()["error"]
        image = client.post("/predict", data={"text": "a"}, files={"image": ("a.png", SMALL)})
        assert image.status_code == 200  # the image worker is free
    release.set()
    running.result()
    service.close()


@pytest.mark.parametrize("tile", ["¹²⁸", "١٢٨", ""])
def test_unicode_digits_and_empty_tile_are_400(predictor, tile) -> None:
    service = InferenceService(predictor)
    with TestClient(create_app(service)) as client:
        files = {"image": ("s.tif", sparse_tiff(64))}
        response = client.post("/predict", data={"text": "a", "tile": tile}, files=files)
    service.close()
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "tile must be 'auto', 'none' (whole image) or a tile"
    )


def test_404_405_and_malformed_multipart_answer_error_json(predictor) -> None:
    service = InferenceService(predictor)
    with TestClient(create_app(service)) as client:
        missing = client.get("/nowhere")
        wrong = client.get("/predict")
        broken = client.post(
            "/predict",
            content=b'--xyz\r\nContent-Disposition: form-data; name="text"\r\n\r\na',
            headers={"content-type": "multipart/form-data; boundary=xyz"},
        )
    service.close()
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    assert (wrong.status_code, wrong.json()) == (405, {"error": "Method Not Allowed"})
    assert wrong.headers["allow"] == "POST"
    assert broken.status_code in (400, 422) and set(broken.json()) == {"error"}


def test_invisible_text_is_refused_like_an_empty_one(predictor) -> None:
    service = InferenceService(predictor)
    with TestClient(create_app(service)) as client:
        files = {"image": ("a.png", io.BytesIO(SMALL))}
        response = client.post("/predict", data={"text": ["a car", "\u200b\u2060"]}, files=files)
    service.close()
    assert response.status_code == 400
    assert response.json() == {
        "error": "text 2 is empty (or invisible): give an expression to segment"
    }


def test_scene_request_without_georeference_prints_no_warning(predictor) -> None:
    plain = io.BytesIO()
    Image.fromarray(random_image(4, 40, 40)).save(plain, format="TIFF")
    service = InferenceService(predictor)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with TestClient(create_app(service)) as client:
            files = {"image": ("plain.tif", plain.getvalue())}
            response = client.post("/predict", data={"text": "a", "tile": "auto"}, files=files)
    service.close()
    assert response.status_code == 200 and response.json()["image"]["georeferenced"] is False
    assert [str(w.message) for w in caught if "georeference" in str(w.message)] == []
    assert [str(w.message) for w in caught if "geotransform" in str(w.message)] == []
