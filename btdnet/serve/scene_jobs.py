"""``POST /predict`` with ``tile``: scene mode (:meth:`Predictor.predict_scene`) for uploads.

The upload's bytes are written to a private temporary folder (under a fixed name, suffix from
the bytes' signature), each text is predicted over the scene tile by tile at native
resolution, and the written outputs (mask COG, GeoJSON) are read back into the answer before
the folder is removed. Positional words of an expression then refer to a tile.
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from btdnet.errors import one_line
from btdnet.predict.image_io import ImageReadError
from btdnet.predict.scene.limits import SceneTooLargeError
from btdnet.serve.answers import png_base64

MIN_TILE = 32


class TileError(ValueError):
    """A ``tile`` value that is neither ``auto`` nor a whole number of pixels >= 32."""


def parse_tile(value: str) -> int | str:
    """``"auto"`` or a tile side in pixels (>= 32)."""
    text = value.strip().lower()
    if text == "auto":
        return "auto"
    if not (text.isascii() and text.isdigit()) or int(text) < MIN_TILE:  # not "¹²⁸"
        raise TileError(
            f"tile must be 'auto' or a tile side in pixels >= {MIN_TILE}, not {value!r}"
        )
    return int(text)


def _mask_facts(mask: np.ndarray) -> tuple[int, list[int] | None]:
    """(area, [x1, y1, x2, y2] with x2/y2 exclusive, or None) of a bool (H, W) mask."""
    area = int(mask.sum())
    if area == 0:
        return 0, None
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return area, [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def scene_answer(text: str, record: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """One text's answer in scene mode, from the files ``predict_scene`` wrote."""
    import rasterio

    mask_path = Path(files["mask_geotiff"])
    with rasterio.open(mask_path) as dataset:
        mask = dataset.read(1) > 0  # (H, W)
    collection = json.loads(Path(files["geojson"]).read_text(encoding="utf-8"))
    features = collection.get("features", [])
    weights = [float(f["properties"].get("area_pixels", 0)) for f in features]
    scores = [float(f["properties"].get("score", 0.0)) for f in features]
    score = float(np.average(scores, weights=weights)) if sum(weights) > 0 else 0.0
    area, bbox = _mask_facts(mask)
    answer: dict[str, Any] = {
        "text": text,
        "score": round(score, 4),
        "present": area > 0,
        "presence": None,
        "bbox": bbox,
        "area": area,
        "truncated": bool(record.get("truncated", False)),
        "mask_png": png_base64(mask.astype(np.uint8) * 255),
        "correlation_png": [],
        "objects": record.get("objects"),
        "tiles": record.get("tiles"),
        "tiles_skipped": record.get("tiles_skipped"),
    }
    if record.get("area_units") == "map":
        answer["geojson"] = collection
        answer["mask_geotiff"] = base64.b64encode(mask_path.read_bytes()).decode("ascii")
    return answer


class SceneTimeoutError(RuntimeError):
    """A scene request ran past the server's time limit (answered 503)."""


@dataclass(frozen=True)
class SceneLimits:
    """The work one scene request may cause: pixels, tiles and seconds.

    The defaults allow a 10,000 x 10,000 scene (about 600 tiles at 480 pixels); a request
    over them is answered 413 before any tile runs, one past ``seconds`` 503.
    """

    max_pixels: int | None = 100_000_000
    max_tiles: int | None = 2_000
    seconds: float = 600.0

    def scene_options(self) -> dict[str, int | None]:
        """The ``max_pixels`` / ``max_tiles`` of :class:`~btdnet.predict.scene.SceneOptions`."""
        return {"max_pixels": self.max_pixels, "max_tiles": self.max_tiles}


@dataclass(frozen=True)
class SceneJob:
    """One request in scene mode: the upload's bytes, its texts and the tile size."""

    data: bytes
    suffix: str
    name: str
    texts: tuple[str, ...]
    tile: int | str
    presence_threshold: float | None = None
    limits: SceneLimits = field(default_factory=lambda: SceneLimits())
    scene: ClassVar[bool] = True  # runs on the service's scene worker, not the image worker

    def run(self, predictor: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Answers per text, and what the answer says about the image.

        Raises:
            SceneTooLargeError: the scene is over the pixel or tile limit (before any tile).
            SceneTimeoutError: the texts took longer than ``limits.seconds``.
        """
        deadline = time.monotonic() + self.limits.seconds
        seconds = self.limits.seconds

        def check_deadline(_tiles: int) -> None:
            if time.monotonic() > deadline:
                raise SceneTimeoutError(
                    f"{self.name}: scene mode stopped after {seconds:g} s, this server's limit "
                    "per request; send a smaller scene or a larger tile"
                )

        with tempfile.TemporaryDirectory(prefix="btdnet-serve-scene-") as folder:
            path = Path(folder) / f"upload{self.suffix}"
            path.write_bytes(self.data)
            answers, record = [], {}
            for index, text in enumerate(self.texts):
                try:
                    result = predictor.predict_scene(
                        path,
                        text,
                        Path(folder) / f"out{index}",
                        tile=self.tile,
                        name="mask",
                        presence_threshold=self.presence_threshold,
                        on_tiles=check_deadline,
                        limits=self.limits.scene_options(),
                    )
                except (ImageReadError, SceneTooLargeError) as error:
                    message = one_line(str(error).replace(str(path), self.name), first=True)
                    message = message.replace("--scene-max", "the server's --scene-max")
                    kind = (
                        SceneTooLargeError if isinstance(error, SceneTooLargeError) else ValueError
                    )
                    raise kind(message) from error
                record = result.record
                answers.append(scene_answer(text, record, result.files))
        image = {
            "name": self.name,
            "width": record.get("width"),
            "height": record.get("height"),
            "georeferenced": record.get("area_units") == "map",
        }
        return answers, image
