"""btdnet-serve: /health, the page, POST /predict answers and every 4xx path."""

from __future__ import annotations

import base64
import io
import json
import threading

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient
from serve_fixtures import decode_png, png_bytes, random_image

from btdnet.models.variants import build_model
from btdnet.predict.predictor import Predictor
from btdnet.serve.app import MAX_TEXT_CHARS, create_app
from btdnet.serve.service import InferenceService, Job


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_pretrained(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def client(predictor):
    service = InferenceService(predictor, max_queue=8, info={"variant": "tiny"})
    with TestClient(create_app(service, max_upload_mb=0.5)) as test_client:
        yield test_client
    service.close()


IMAGE = random_image(1, 45, 61)  # odd, non-square


def post(client, data=None, files=None):
    return client.post("/predict", data=data or {}, files=files)


def test_health_names_model_and_device(client):
    answer = client.get("/health").json()
    assert answer["status"] == "ok"
    assert answer["model"]["variant"] == "tiny"
    assert answer["device"] == "cpu"


def test_page_is_self_contained(client):
    page = client.get("/")
    script = client.get("/app.js")
    assert page.status_code == 200 and script.status_code == 200
    assert 'id="image"' in page.text and 'src="/app.js"' in page.text
    for text in (page.text, script.text):  # nothing fetched from the internet
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_openapi_documents_predict_fields(client):
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/predict"]["post"]
    body_ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    body = schema["components"]["schemas"][body_ref.rsplit("/", 1)[-1]]
    assert {"image", "text", "presence_threshold", "tile"} <= set(body["properties"])
    assert set(body["required"]) == {"image", "text"}
    assert {"400", "413", "415"} <= set(operation["responses"])


def test_predict_matches_the_predictor(client, predictor):
    texts = ["the red car on the left", "the large ship"]
    response = post(
        client,
        data={"text": texts, "preview": "true"},
        files={"image": ("scene.png", png_bytes(IMAGE), "image/png")},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    predictor.set_image(IMAGE)
    expected = predictor.predict(texts)
    assert [p["text"] for p in answer["predictions"]] == texts
    assert answer["image"] == {
        "name": "scene.png",
        "width": 61,
        "height": 45,
        "georeferenced": False,
        "mode": "whole",  # 61 px: not more than twice the model's 96
        "mode_forced": False,
        "resize_factor": 0.635,  # 61 / 96: enlarged to the model's input
        "resized_to": 96,
    }
    for got, want in zip(answer["predictions"], expected):
        mask = decode_png(got["mask_png"])
        assert mask.shape == (45, 61) and set(np.unique(mask)) <= {0, 255}
        np.testing.assert_array_equal(mask == 255, want.mask)
        assert got["score"] == pytest.approx(want.score, abs=1e-4)
        assert got["area"] == want.area
        assert got["bbox"] == (list(want.bbox) if want.bbox else None)
        assert got["present"] is None and got["presence"] is None  # no presence head
        assert got["present_note"] == "this model has no presence head: it cannot say absent"
        assert len(got["correlation_png"]) == len(want.correlation) > 0
        # each stage's map through the blue-cyan-green-yellow-red ramp, stops at 0, 1/4 ... 1
        stops = np.array([[0, 0, 128], [0, 128, 255], [0, 200, 80], [255, 230, 0], [220, 20, 20]])
        for encoded, values in zip(got["correlation_png"], want.correlation):
            heat = decode_png(encoded).astype(float)  # (h_i, w_i, 3)
            ramp = [np.interp(values, np.linspace(0, 1, 5), stops[:, c]) for c in range(3)]
            assert heat.shape == (*values.shape, 3)
            assert np.abs(heat - np.stack(ramp, axis=-1)).max() <= 0.5 + 1e-3  # rounding
    np.testing.assert_array_equal(decode_png(answer["image_png"]), IMAGE)  # 61 px: not shrunk


def test_geotiff_upload_gets_geojson_and_geotiff(client, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    path = tmp_path / "utm.tif"
    transform = from_origin(500000.0, 4200000.0, 0.5, 0.5)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=33,
        width=47,
        count=3,
        dtype="uint16",
        crs="EPSG:32633",
        transform=transform,
    ) as dst:
        dst.write(np.random.default_rng(2).integers(0, 4000, (3, 33, 47), dtype=np.uint16))
    response = post(
        client, data={"text": "the field"}, files={"image": ("utm.tif", path.read_bytes())}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    prediction = answer["predictions"][0]
    assert answer["image"]["georeferenced"] and answer["image"]["crs_epsg"] == 32633
    collection = prediction["geojson"]
    assert "crs" not in collection  # RFC 7946: WGS 84 longitude/latitude
    if prediction["area"]:
        lon, lat = collection["features"][0]["geometry"]["coordinates"][0][0]
        assert 14.99 < lon < 15.01 and 37.9 < lat < 38.0  # UTM 33N (500000, 4200000)
    with MemoryFile(base64.b64decode(prediction["mask_geotiff"])) as memory, memory.open() as tif:
        assert tif.crs.to_epsg() == 32633 and tif.transform == transform
        np.testing.assert_array_equal(tif.read(1), decode_png(prediction["mask_png"]))


PNG = png_bytes(IMAGE)
BAD_REQUESTS = {
    "no image": ({"text": "the car"}, None, 422, "image"),
    "no text": ({}, {"image": ("a.png", PNG)}, 422, "text"),
    "empty text": ({"text": ["the car", "   "]}, {"image": ("a.png", PNG)}, 400, "text 2 is empty"),
    "long text": ({"text": "x" * (MAX_TEXT_CHARS + 1)}, {"image": ("a.png", PNG)}, 400, "limit"),
    "not an image": ({"text": "the car"}, {"image": ("notes.txt", b"hello")}, 415, "notes.txt"),
    "empty file": ({"text": "the car"}, {"image": ("a.png", b"")}, 400, "empty"),
    "broken png": ({"text": "a"}, {"image": ("a.png", PNG[:40])}, 400, "a.png: cannot read"),
    "path as image": ({"text": "a", "image": "/etc/passwd"}, None, 422, "image"),
    "threshold": ({"text": "a", "presence_threshold": "1.5"}, {"image": ("a.png", PNG)}, 422, ""),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_4xx_json(client, case):
    data, files, status, words = BAD_REQUESTS[case]
    response = post(client, data=data, files=files)
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert words in message and "\n" not in message


def test_client_file_name_is_never_a_path(client):
    response = post(client, data={"text": "a"}, files={"image": ("../../etc/passwd", b"x")})
    assert response.status_code == 415
    assert response.json()["error"].startswith("passwd:")  # only the last component, as a name


def test_upload_limit_answers_413(client):
    big = b"\x89PNG\r\n\x1a\n" + bytes(700_000)  # over the fixture's 0.5 MB
    response = post(client, data={"text": "a"}, files={"image": ("big.png", big)})
    assert response.status_code == 413
    assert "0.5 MB" in response.json()["error"]


def test_streamed_body_over_the_limit_answers_413(client):
    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        for _ in range(10):
            yield bytes(100_000)

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413
    assert json.loads(response.text)["error"]


class _BlockingPredictor:
    """Stands in for the model: ``predict`` waits until the test releases it."""

    device = "cpu"
    input_side = 96

    def __init__(self):
        self.release = threading.Event()

    def set_image(self, image):
        self.image = image

    def predict(self, texts, presence_threshold=None):
        assert self.release.wait(timeout=10)
        return list(texts)


def test_full_queue_answers_503():
    stub = _BlockingPredictor()
    service = InferenceService(stub, max_queue=2)
    with TestClient(create_app(service)) as test_client:
        running = service.submit(Job(image=None, texts=("a",)))
        waiting = service.submit(Job(image=None, texts=("b",)))
        response = post(test_client, {"text": "c"}, {"image": ("a.png", PNG)})
        assert response.status_code == 503
        assert "limit is 2" in response.json()["error"]
        stub.release.set()
        assert running.result() == ["a"] and waiting.result() == ["b"]
        assert service.in_flight == 0 and service.completed == 2
    service.close()


def test_decode_upload_reads_jpeg_from_bytes():
    from PIL import Image

    from btdnet.serve.upload import decode_upload

    buffer = io.BytesIO()
    Image.fromarray(IMAGE).save(buffer, format="JPEG")
    image = decode_upload(buffer.getvalue(), "C:\\Users\\me\\tile.jpg")
    assert image.pixels.shape == (45, 61, 3) and str(image.path) == "tile.jpg"
    buffer.seek(0)
    np.testing.assert_array_equal(image.pixels, np.asarray(Image.open(buffer).convert("RGB")))


def test_presence_threshold_per_request():
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, training=False, use_presence=True)
    predictor = Predictor(model, device="cpu")
    service = InferenceService(predictor)
    files = {"image": ("a.png", PNG)}
    with TestClient(create_app(service)) as test_client:
        strict = post(test_client, {"text": "the car", "presence_threshold": "1"}, files).json()
        lenient = post(test_client, {"text": "the car", "presence_threshold": "0"}, files).json()
    service.close()
    never, always = strict["predictions"][0], lenient["predictions"][0]
    assert isinstance(never["presence"], float) and never["presence"] == always["presence"]
    assert never["present"] is False and never["area"] == 0 and never["bbox"] is None
    assert not decode_png(never["mask_png"]).any()
    assert always["present"] is True and always["area"] > 0
    assert predictor.presence_threshold == 0.5  # the shared default is never changed


def test_scene_mode_matches_predict_scene(client, predictor, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import Affine

    path = tmp_path / "scene.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=70,
        width=90,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=Affine(0.5, 0, 500000.0, 0, -0.5, 4200000.0),
    ) as dst:
        dst.write(random_image(5, 70, 90).transpose(2, 0, 1))
    files = {"image": ("scene.tif", path.read_bytes())}
    response = post(client, {"text": "the field", "tile": "48"}, files)
    assert response.status_code == 200, response.text
    answer = response.json()
    got = answer["predictions"][0]
    direct = predictor.predict_scene(path, "the field", tmp_path / "direct", tile=48)
    with rasterio.open(direct.files["mask_geotiff"]) as dataset:
        expected = dataset.read(1) > 0
    np.testing.assert_array_equal(decode_png(got["mask_png"]) == 255, expected)
    assert got["area"] == int(expected.sum()) and got["tiles"] == direct.record["tiles"]
    assert answer["image"]["width"] == 90 and answer["image"]["georeferenced"] is True
    assert got["geojson"]["type"] == "FeatureCollection" and got["mask_geotiff"]


@pytest.mark.parametrize("tile", ["abc", "8", "-5"])
def test_bad_tile_is_400(client, tile):
    response = post(client, {"text": "a", "tile": tile}, {"image": ("a.png", PNG)})
    assert response.status_code == 400 and "tile must be" in response.json()["error"]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (no pixel data follows)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_image_over_the_pixel_limit_is_400_before_decoding(client):
    response = post(
        client,
        data={"text": "the car"},
        files={"image": ("huge.png", _png_header_only(20000, 20000))},
    )
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert message.startswith("huge.png") and "pixel" in message and "\n" not in message


def test_image_answer_and_preview_fields_by_hand():
    import base64
    import io
    from pathlib import Path

    from PIL import Image

    from btdnet.raster.geo import GeoReference
    from btdnet.raster.image_io import LoadedImage
    from btdnet.serve.answers import image_answer, preview_base64

    pixels = np.zeros((3, 5, 3), np.uint8)
    plain = LoadedImage(Path("a.png"), pixels)
    assert image_answer(plain) == {"name": "a.png", "width": 5, "height": 3, "georeferenced": False}
    geo = GeoReference("", (0.5, 0.0, 10.0, 0.0, -0.5, 20.0), 32633)
    placed = image_answer(LoadedImage(Path("b.tif"), pixels, geo))
    assert placed["crs_epsg"] == 32633 and placed["georeferenced"] is True
    assert placed["transform"] == [0.5, 0.0, 10.0, 0.0, -0.5, 20.0]
    wide = LoadedImage(Path("w.png"), np.zeros((10, 40, 3), np.uint8))
    decoded = Image.open(io.BytesIO(base64.b64decode(preview_base64(wide, max_side=20))))
    assert decoded.size == (20, 5)  # the longer side shrunk to 20, the ratio kept
    same = Image.open(io.BytesIO(base64.b64decode(preview_base64(wide, max_side=40))))
    assert same.size == (40, 10)  # at the limit: not shrunk
