"""Many requests at once on one shared model: every answer equals its sequential answer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
from serve_fixtures import live_server, png_bytes, random_image

from btdnet.predict.predictor import Predictor
from btdnet.serve.app import create_app
from btdnet.serve.service import InferenceService, QueueFullError

TEXTS = ["the red car", "the white ship at the dock", "a storage tank", "the tennis court"]


class _SlowSetImagePredictor(Predictor):
    """The real predictor with a pause after ``set_image``: any overlap of two requests on the
    shared model (image of one, texts of another) would then show in the answers."""

    def set_image(self, image) -> None:
        super().set_image(image)
        time.sleep(0.03)


def _request(index: int) -> tuple[bytes, list[str]]:
    """Request ``index``: its own image (own size) and its own texts."""
    image = random_image(100 + index, 29 + 3 * index, 41 + 2 * index)
    texts = [TEXTS[index % 4], TEXTS[(index + 1) % 4] + f" number {index}"]
    return png_bytes(image), texts


def _post(base: str, index: int) -> dict:
    data, texts = _request(index)
    response = httpx.post(
        f"{base}/predict",
        files={"image": (f"img{index}.png", data, "image/png")},
        data={"text": texts},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _essentials(answer: dict) -> tuple:
    return (
        answer["image"]["name"],
        answer["image"]["width"],
        answer["image"]["height"],
        [
            (p["text"], p["score"], p["bbox"], p["area"], p["mask_png"])
            for p in answer["predictions"]
        ],
    )


def test_concurrent_answers_equal_sequential_answers(checkpoint):
    predictor = _SlowSetImagePredictor.from_pretrained(checkpoint, device="cpu", batch_size=2)
    service = InferenceService(predictor, max_queue=64)
    count = 8
    with live_server(create_app(service)) as base:
        sequential = [_essentials(_post(base, i)) for i in range(count)]
        with ThreadPoolExecutor(max_workers=count) as pool:
            concurrent = list(pool.map(lambda i: _essentials(_post(base, i)), range(count)))
    service.close()
    assert len({answer[3][0][4] for answer in sequential}) > 1  # the masks differ per request
    for index in range(count):
        assert concurrent[index] == sequential[index], f"request {index} was mixed up"
    assert service.completed == 2 * count
    assert service.peak_in_flight > 1  # requests really overlapped


class _Held:
    """A job that holds its worker until released (``scene`` picks the scene worker)."""

    def __init__(self, release: threading.Event, scene: bool) -> None:
        self.release, self.scene = release, scene

    def run(self, _predictor) -> str:
        self.release.wait(timeout=30)
        return "done"


@pytest.mark.parametrize("max_scene_queue", [1, 2])
def test_queues_hold_exactly_their_limits_and_free_each_place(max_scene_queue):
    service = InferenceService(object(), max_queue=3, max_scene_queue=max_scene_queue)
    release = threading.Event()
    try:
        scenes = [service.submit(_Held(release, True)) for _ in range(max_scene_queue)]
        with pytest.raises(QueueFullError, match=f"{max_scene_queue} scene requests are already"):
            service.submit(_Held(release, True))
        images = [service.submit(_Held(release, False)) for _ in range(3 - max_scene_queue)]
        assert service.in_flight == 3
        with pytest.raises(QueueFullError, match="3 requests are already queued"):
            service.submit(_Held(release, False))
        release.set()
        assert [job.result(timeout=30) for job in scenes + images] == ["done"] * 3
        deadline = time.monotonic() + 30
        while service.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)  # the done-callbacks free the places
        assert service.in_flight == 0 and service.completed == 3
        again = [service.submit(_Held(release, True)) for _ in range(max_scene_queue)]
        assert [job.result(timeout=30) for job in again] == ["done"] * max_scene_queue
    finally:
        release.set()
        service.close()


def test_queue_limits_below_one_are_refused():
    for kwargs in ({"max_queue": 0}, {"max_scene_queue": 0}):
        with pytest.raises(ValueError, match="max_queue and max_scene_queue must be >= 1"):
            InferenceService(object(), **kwargs)
    service = InferenceService(object(), max_queue=1, max_scene_queue=1, info={"a": 1})
    assert service.info == {"a": 1} and service.in_flight == 0 and service.completed == 0
    service.close()


class _Named:
    """A job that answers the name of the worker thread it ran on."""

    scene = False

    def run(self, _predictor) -> str:
        return threading.current_thread().name


def test_a_small_request_is_answered_while_a_scene_holds_its_worker():
    service = InferenceService(object(), max_queue=3, max_scene_queue=1)
    release = threading.Event()
    try:
        scene = service.submit(_Held(release, True))
        small = service.submit(_Named())
        # the scene's worker is still busy: the small request ran on the other one
        assert small.result(timeout=30).startswith("btdnet-infer")
        assert not scene.done()
        release.set()
        assert scene.result(timeout=30) == "done"
    finally:
        release.set()
        service.close()
