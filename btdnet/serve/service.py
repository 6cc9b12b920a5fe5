"""One model shared by every request: an inference worker fed by a bounded queue (and a second
worker for scene-mode requests, with its own bound).

A :class:`~btdnet.predict.Predictor` holds one current image, so two requests must never use it
at the same time. :class:`InferenceService` owns the predictor and runs every job on one worker
thread, in arrival order: a request's image is set and all its texts are predicted (batched)
before the next request's image is set, so answers are never mixed up. Decoding uploads and
encoding answers happen outside the worker, in the web server's threads, in parallel.

Scene-mode jobs (``job.scene``) never touch the current image; they run on a second worker
with their own bound (``max_scene_queue``), so one scene of thousands of tiles does not hold up
the image requests queued behind it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from btdnet.predict.predictor import Prediction, Predictor
from btdnet.raster.image_io import LoadedImage


class QueueFullError(RuntimeError):
    """More requests are waiting than the service accepts; the client should retry later."""


@dataclass(frozen=True)
class Job:
    """One request's work: an image, its texts (already checked) and its own presence
    threshold (``None``: the predictor's), passed as an argument, never set on the predictor."""

    image: LoadedImage
    texts: tuple[str, ...]
    presence_threshold: float | None = None

    def run(self, predictor: Predictor) -> list[Prediction]:
        """Set the image, then predict every text (batched)."""
        predictor.set_image(self.image)
        texts = list(self.texts)
        return list(predictor.predict(texts, presence_threshold=self.presence_threshold))


class InferenceService:
    """Run :class:`Job`s one at a time on a shared :class:`Predictor`.

    Args:
        predictor: the model, already on its device.
        max_queue: jobs allowed to wait or run at once; one more raises :class:`QueueFullError`.
        info: what ``GET /health`` reports about the model (variant, checkpoint, ...).
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        max_queue: int = 64,
        max_scene_queue: int = 2,
        info: dict[str, Any] | None = None,
    ) -> None:
        if max_queue < 1 or max_scene_queue < 1:
            raise ValueError(f"max_queue and max_scene_queue must be >= 1, got {max_queue}")
        self.predictor = predictor
        self.max_queue = max_queue
        self.max_scene_queue = max_scene_queue
        self.info = dict(info or {})
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="btdnet-infer")
        # Scene jobs (thousands of tiles) run on their own worker, so a large scene never
        # holds up the image requests; the predictor's scene mode keeps no per-image state.
        self._scene_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="btdnet-scene")
        self._lock = threading.Lock()
        self._scene_in_flight = 0
        self._in_flight = 0
        self.peak_in_flight = 0  # the most jobs waiting or running at once so far
        self.completed = 0

    @property
    def in_flight(self) -> int:
        """Jobs waiting or running now."""
        return self._in_flight

    def submit(self, job: Any) -> Future:
        """Queue a job (anything with ``run(predictor)``); its future
        gives what ``run`` returns (for a :class:`Job`, one :class:`Prediction` per text).

        Raises:
            QueueFullError: ``max_queue`` jobs are already waiting or running.
        """
        scene = bool(getattr(job, "scene", False))
        with self._lock:
            if scene and self._scene_in_flight >= self.max_scene_queue:
                raise QueueFullError(
                    f"{self._scene_in_flight} scene requests are already queued (the limit is "
                    f"{self.max_scene_queue}); retry later"
                )
            if self._in_flight >= self.max_queue:
                raise QueueFullError(
                    f"{self._in_flight} requests are already queued (the limit is "
                    f"{self.max_queue}); retry shortly"
                )
            self._in_flight += 1
            self._scene_in_flight += scene
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        executor = self._scene_executor if scene else self._executor
        future = executor.submit(self._run, job)
        future.add_done_callback(lambda _future: self._finished(scene))
        return future

    def _finished(self, scene: bool) -> None:
        with self._lock:
            self._in_flight -= 1
            self._scene_in_flight -= scene
            self.completed += 1

    def _run(self, job: Any) -> Any:
        return job.run(self.predictor)

    def run_sync(self, job: Any) -> Any:
        """Submit and wait (for scripts and tests)."""
        return self.submit(job).result()

    def close(self) -> None:
        """Finish the queued jobs and stop the workers."""
        self._executor.shutdown(wait=True)
        self._scene_executor.shutdown(wait=True)
