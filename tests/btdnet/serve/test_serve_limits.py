"""Every server limit at its exact boundary, a body really streamed over the socket past the
upload limit, and the scene-mode answer compared field by field with ``predict_scene``."""

from __future__ import annotations

import asyncio
import json
import select
import socket
from types import SimpleNamespace
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("uvicorn")
from fastapi import HTTPException
from fastapi.testclient import TestClient
from serve_fixtures import decode_png, live_server, png_bytes, random_image

from btdnet.models.variants import build_model
from btdnet.predict.predictor import Predictor
from btdnet.serve.app import MAX_TEXT_CHARS, MAX_TEXTS, check_texts, create_app
from btdnet.serve.limits import BodySizeLimit
from btdnet.serve.scene_jobs import MIN_TILE, TileError, parse_tile
from btdnet.serve.service import InferenceService
from btdnet.serve.upload import NAME_MAX_LENGTH, display_name

PNG = png_bytes(random_image(1, 45, 61))
LIMIT_MB = 0.5
LIMIT_BYTES = int(LIMIT_MB * 1024 * 1024)


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_pretrained(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def app(predictor):
    service = InferenceService(predictor, max_queue=4)
    yield create_app(service, max_upload_mb=LIMIT_MB)
    service.close()


# --- texts -------------------------------------------------------------------------------


def test_sixteen_texts_accepted_seventeen_refused() -> None:
    assert MAX_TEXTS == 16
    assert check_texts([f"t{i}" for i in range(16)]) == tuple(f"t{i}" for i in range(16))
    with pytest.raises(HTTPException) as error:
        check_texts([f"t{i}" for i in range(17)])
    assert error.value.status_code == 400 and error.value.detail.startswith("17 texts; at most 16")


def test_five_hundred_characters_after_stripping_accepted_501_refused() -> None:
    assert MAX_TEXT_CHARS == 500
    padded = "  " + "x" * 500 + " \n"  # 504 characters before stripping
    assert check_texts(["a", padded]) == ("a", "x" * 500)
    with pytest.raises(HTTPException) as error:
        check_texts(["a", " " + "x" * 501])
    assert error.value.status_code == 400
    assert error.value.detail == "text 2 has 501 characters; the limit is 500"
    with pytest.raises(HTTPException, match="text 1 is empty"):
        check_texts([" \t "])
    with pytest.raises(HTTPException, match="no text"):
        check_texts([])


def test_sixteen_long_texts_over_http_are_answered_in_order(app) -> None:
    texts = [f"{i:02d}" + "y" * 498 for i in range(16)]
    with TestClient(app) as client:
        response = client.post(
            "/predict",
            data={"text": [f"  {t}  " for t in texts]},
            files={"image": ("a.png", PNG)},
        )
        assert response.status_code == 200, response.text
        assert [p["text"] for p in response.json()["predictions"]] == texts
        refused = client.post(
            "/predict", data={"text": [*texts, "z"]}, files={"image": ("a.png", PNG)}
        )
        assert refused.status_code == 400 and "17 texts" in refused.json()["error"]


@pytest.mark.parametrize(("value", "status"), [("-0.01", 422), ("1.01", 422), ("0.0", 200)])
def test_presence_threshold_bounds(app, value, status) -> None:
    with TestClient(app) as client:
        response = client.post(
            "/predict",
            data={"text": "a", "presence_threshold": value},
            files={"image": ("a.png", PNG)},
        )
    assert response.status_code == status, response.text


# --- tile and file name ------------------------------------------------------------------


def test_tile_of_32_accepted_31_refused() -> None:
    assert MIN_TILE == 32
    assert parse_tile("32") == 32 and parse_tile(" AUTO ") == "auto" and parse_tile("480") == 480
    for bad in ("31", "0", "32.0", "3e2", "", "auto96"):
        with pytest.raises(TileError, match="tile must be"):
            parse_tile(bad)


def test_file_name_of_80_characters_kept_81_cut() -> None:
    assert NAME_MAX_LENGTH == 80
    assert display_name("d/" + "n" * 80) == "n" * 80
    assert display_name("n" * 81) == "n" * 80
    assert display_name("a\x00b.png") == "a?b.png"
    assert display_name("C:\\x\\..\\y.tif") == "y.tif" and display_name("") == "upload"


# --- the body size limit, at the byte ----------------------------------------------------


async def _echo(scope, receive, send) -> None:
    """An ASGI app that reads the whole body and answers its length."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def _call(limit: int, chunks: list[bytes], declared: int | None) -> tuple[int, bytes]:
    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    scope = {"type": "http", "headers": headers}
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent = []

    async def receive():
        return pending.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(BodySizeLimit(_echo, max_bytes=limit)(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_body_of_exactly_the_limit_passes_one_byte_more_is_413() -> None:
    assert _call(100, [b"x" * 60, b"x" * 40], declared=100) == (200, b"100")
    assert _call(100, [b"x" * 50], declared=50) == (200, b"50")  # under it, honestly declared
    assert _call(5000, [b"x" * 5000], declared=5000) == (200, b"5000")
    assert _call(100, [b"x" * 60, b"x" * 40], declared=None) == (200, b"100")
    status, body = _call(100, [b"x" * 101], declared=101)
    assert status == 413 and "limit" in json.loads(body)["error"]
    assert _call(100, [b"x" * 60, b"x" * 41], declared=None)[0] == 413  # streamed past it
    assert _call(100, [b"x" * 60, b"x" * 41], declared=50)[0] == 413  # lying about its length


def test_an_answer_already_started_is_not_followed_by_a_second_413() -> None:
    """An app that starts its answer before reading the body: when the body then passes the
    limit, the 413 cannot replace it (one response start only, and nothing more is sent)."""

    async def eager(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive()).get("more_body", False):
            pass
        await send({"type": "http.response.body", "body": b"late"})

    pending = [
        {"type": "http.request", "body": b"x" * 60, "more_body": True},
        {"type": "http.request", "body": b"x" * 60, "more_body": False},
    ]
    sent = []

    async def receive():
        return pending.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(BodySizeLimit(eager, max_bytes=100)({"type": "http", "headers": []}, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start"] and sent[0]["status"] == 200


def _raw_post(base: str, parts: list[bytes]) -> tuple[int, dict]:
    """POST ``parts`` as a chunked body over a plain socket (no Content-Length), stopping early
    if the server answers before the end; returns (status, JSON body)."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=300) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        )
        try:
            for part in parts:
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered already
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head, body = answer.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body[: _length(answer)])


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def _multipart(text: str, image: bytes) -> tuple[bytes, bytes]:
    head = (
        b'--b\r\nContent-Disposition: form-data; name="text"\r\n\r\n' + text.encode() + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + image
    )
    return head, b"\r\n--b--\r\n"


def test_streamed_body_over_the_limit_is_cut_off_with_413(app) -> None:
    head, tail = _multipart("the car", b"\x89PNG\r\n\x1a\n")
    chunks = [head] + [bytes(64 * 1024)] * 40 + [tail]  # 2.5 MB in 64 KB chunks, no length
    with live_server(app) as base:
        status, body = _raw_post(base, chunks)
        assert status == 413 and "0.5 MB" in body["error"]
        # the same socket path under the limit reaches the model
        head, tail = _multipart("the car", PNG)
        status, body = _raw_post(base, [head[:100], head[100:], tail])
        assert status == 200 and body["predictions"][0]["text"] == "the car"


# --- scene mode, field by field ----------------------------------------------------------


class RedModel(nn.Module):
    """Probability = each pixel's red value: the answer is known pixel by pixel (tiles of the
    model's input side: no resizing blurs it)."""

    def __init__(self, tiny: nn.Module) -> None:
        super().__init__()
        self.config, self.tokenizer = tiny.config, tiny.tokenizer

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        red = (pixel_values[:, 0] * 0.229 + 0.485).clamp(1e-6, 1 - 1e-6)  # (B, S, S)
        return SimpleNamespace(target_logits=torch.logit(red.double())[:, None])


def test_scene_answer_equals_predict_scene_field_by_field(tmp_path) -> None:
    rasterio = pytest.importorskip("rasterio")
    torch.manual_seed(0)
    scene_predictor = Predictor(RedModel(build_model("tiny", pretrained=False)), device="cpu")
    bands = np.full((3, 150, 170), 50, dtype=np.uint8)
    bands[0, 10:20, 15:25] = 230  # object A: 100 px at 230 / 255
    bands[0, 75:95, 75:95] = 153  # object B: 400 px at 153 / 255, across both seams
    path = tmp_path / "scene.tif"
    profile = {"driver": "GTiff", "height": 150, "width": 170, "count": 3, "dtype": "uint8"}
    transform = rasterio.Affine(0.5, 0, 500000.0, 0, -0.5, 4200000.0)
    with rasterio.open(path, "w", crs="EPSG:32633", transform=transform, **profile) as dst:
        dst.write(bands)
    service = InferenceService(scene_predictor)
    with TestClient(create_app(service)) as client:
        response = client.post(
            "/predict",
            data={"text": ["  the bright things ", "the bright things"], "tile": "96"},
            files={"image": ("scene.tif", path.read_bytes())},
        )
    service.close()
    assert response.status_code == 200, response.text
    answer = response.json()
    got = answer["predictions"][0]
    assert answer["predictions"][1] == got
    direct = scene_predictor.predict_scene(path, "the bright things", tmp_path / "d", tile=96)
    record = direct.record
    expected_mask = np.zeros((150, 170), dtype=bool)
    expected_mask[10:20, 15:25] = expected_mask[75:95, 75:95] = True
    np.testing.assert_array_equal(decode_png(got["mask_png"]) == 255, expected_mask)
    # score: the objects' scores weighted by their pixels, (100 * 230 + 400 * 153) / 500 / 255
    assert got["score"] == pytest.approx(0.6604, abs=1e-4)
    assert got["bbox"] is None and got["area"] == 500 == record["area_pixels"]
    assert got["objects"] == [  # one box and area per object, not one box over both
        {"id": 1, "bbox": [15, 10, 25, 20], "area_pixels": 100, "area": 25.0},
        {"id": 2, "bbox": [75, 75, 95, 95], "area_pixels": 400, "area": 100.0},
    ]
    assert got["present"] is None and got["presence"] is None and got["truncated"] is False
    assert (got["object_count"], got["tiles"], got["tiles_skipped"]) == (
        record["objects"],
        record["tiles"],
        record["tiles_skipped"],
    )
    assert (record["objects"], record["tiles"]) == (2, 4)
    with open(record["geojson"], encoding="utf-8") as stream:
        assert got["geojson"] == json.load(stream)
    assert answer["image"] == {
        "name": "scene.tif",
        "width": 170,
        "height": 150,
        "georeferenced": True,
        "mode": "scene",
        "mode_forced": True,  # tile=96 asked for it: no mode_note
        "tile": 96,
        "overlap": 12,
        "tiles": 4,
    }


def test_preview_is_shrunk_only_past_1024_pixels() -> None:
    from btdnet.raster.image_io import LoadedImage
    from btdnet.serve.answers import PREVIEW_MAX_SIDE, preview_base64

    assert PREVIEW_MAX_SIDE == 1024
    for width, expected in ((1024, (20, 1024)), (1100, (19, 1024))):  # 20 * 1024 / 1100 = 18.6
        pixels = random_image(3, 20, width)
        image = LoadedImage(path=None, pixels=pixels)
        assert decode_png(preview_base64(image)).shape[:2] == expected
    pixels = random_image(4, 20, 1024)
    same = decode_png(preview_base64(LoadedImage(path=None, pixels=pixels)))
    np.testing.assert_array_equal(same, pixels)


def test_an_upload_that_cannot_be_decoded_is_a_400_naming_the_clients_file() -> None:
    from btdnet.serve.upload import UploadError, decode_upload

    pixels = random_image(0, 45, 61)
    whole = png_bytes(pixels)
    np.testing.assert_array_equal(decode_upload(whole, "scene.png").pixels, pixels)
    with pytest.raises(UploadError) as caught:
        decode_upload(whole[:60], "scene.png")  # a PNG signature and header, pixels cut off
    message = str(caught.value)
    assert caught.value.status == 400 and message.startswith("scene.png: cannot read image")
    assert "btdnet-serve-" not in message and "\n" not in message  # no server path


def test_scene_limits_are_frozen_so_no_request_can_loosen_them() -> None:
    """One SceneLimits is shared by every scene request of a server: it cannot be changed in
    place, and equal limits are equal (and hash alike)."""
    import dataclasses

    from btdnet.serve.scene_jobs import SceneLimits

    limits = SceneLimits(max_pixels=1000, max_tiles=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_pixels = None
    assert limits.max_pixels == 1000
    assert {limits: "kept"}[SceneLimits(max_pixels=1000, max_tiles=4)] == "kept"


def test_upload_signatures_statuses_and_names() -> None:
    import io

    from PIL import Image

    from btdnet.serve.upload import (
        UploadError,
        check_upload,
        decode_upload,
        sniff_suffix,
        upload_size,
    )

    signatures = {
        b"\x89PNG\r\n\x1a\n...": ".png",
        b"\xff\xd8\xff\xe0": ".jpg",
        b"II*\x00\x08": ".tif",
        b"MM\x00*\x00": ".tif",
        b"II+\x00": ".tif",
        b"MM\x00+": ".tif",
        b"GIF89a": None,
        b"\x89PNG": None,  # a signature cut short
        b"MM*\x00": None,
    }
    assert {data: sniff_suffix(data) for data in signatures} == signatures
    with pytest.raises(UploadError, match=r"^a\.png: the uploaded file is empty$") as empty:
        check_upload(b"", "dir/a.png")
    assert empty.value.status == 400
    with pytest.raises(UploadError, match=r"^notes\.txt: not an image") as other:
        check_upload(b"hello", "notes.txt")
    assert other.value.status == 415
    buffer = io.BytesIO()
    Image.fromarray(np.full((7, 11, 3), 200, np.uint8)).save(buffer, format="PNG")
    data = buffer.getvalue()
    assert upload_size(data, "x.png") == (7, 11)
    image = decode_upload(data, "/secret/place/x.png")
    assert str(image.path) == "x.png" and image.pixels.shape == (7, 11, 3)
    assert (image.pixels == 200).all()
    broken = data[:40]  # a PNG header without its pixels
    with pytest.raises(UploadError) as info:
        decode_upload(broken, "cut.png")
    message = str(info.value)
    assert info.value.status == 400 and message.startswith("cut.png")
    assert "upload.png" not in message and "\n" not in message


def test_whole_image_words_and_objects_joined_by_their_sides_only() -> None:
    from btdnet.serve.scene_jobs import object_list

    assert parse_tile(" None ") is None and parse_tile("WHOLE") is None
    mask = np.zeros((5, 6), dtype=bool)
    mask[0, 0] = mask[1, 1] = True  # touching only at a corner: two objects
    mask[3:5, 2:6] = True  # 8 px
    assert object_list(mask, 0.25) == [
        {"id": 1, "bbox": [0, 0, 1, 1], "area_pixels": 1, "area": 0.25},
        {"id": 2, "bbox": [1, 1, 2, 2], "area_pixels": 1, "area": 0.25},
        {"id": 3, "bbox": [2, 3, 6, 5], "area_pixels": 8, "area": 2.0},
    ]
    assert object_list(np.zeros((3, 3), dtype=bool), 1.0) == []
