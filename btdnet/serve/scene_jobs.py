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
from btdnet.presence import presence_note
from btdnet.raster.bands import BandsError, Stretch
from btdnet.raster.image_io import ImageReadError
from btdnet.serve.answers import png_base64
from btdnet.tiling import SceneTooLargeError

MIN_TILE = 32


WHOLE_WORDS = ("none", "whole")


class TileError(ValueError):
    """A ``tile`` value that is neither ``auto``, ``none`` nor a whole number of pixels >= 32."""


def parse_tile(value: str) -> int | str | None:
    """``"auto"``, a tile side in pixels (>= 32), or None for ``none``/``whole`` (whole-image
    mode forced)."""
    text = value.strip().lower()
    if text == "auto":
        return "auto"
    if text in WHOLE_WORDS:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < MIN_TILE:  # not "¹²⁸"
        raise TileError(
            f"tile must be 'auto', 'none' (whole image) or a tile side in pixels >= {MIN_TILE}, "
            f"not {value!r}"
        )
    return int(text)


def object_list(mask: np.ndarray, unit_area: float) -> list[dict[str, Any]]:
    """One entry per 4-connected object of a bool (H, W) mask, in raster order of its first
    pixel (the polygons' order): ``id``, ``bbox`` ``[x1, y1, x2, y2]`` (x2, y2 exclusive),
    ``area_pixels`` and ``area`` (map units, or pixels without a georeference)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask)  # (H, W) int32, the default cross: 4-connected
    if count == 0:
        return []
    pixels = np.bincount(labels.ravel(), minlength=count + 1)[1:]  # (N,)
    objects = []
    for number, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        area = int(pixels[number - 1])
        objects.append(
            {
                "id": number,
                "bbox": [int(cols.start), int(rows.start), int(cols.stop), int(rows.stop)],
                "area_pixels": area,
                "area": area * unit_area,
            }
        )
    return objects


def scene_answer(text: str, record: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """One text's answer in scene mode, from the files ``predict_scene`` wrote: the totals
    (``area``, ``object_count``) and one box and area per object (``objects``); ``bbox`` is
    null (one box over scattered objects would say nothing), ``present`` as in whole-image
    answers (null for a model without a presence head)."""
    import rasterio

    mask_path = Path(files["mask_geotiff"])
    with rasterio.open(mask_path) as dataset:
        mask = dataset.read(1) > 0  # (H, W)
    collection = json.loads(Path(files["geojson"]).read_text(encoding="utf-8"))
    features = collection.get("features", [])
    weights = [float(f["properties"].get("area_pixels", 0)) for f in features]
    scores = [float(f["properties"].get("score", 0.0)) for f in features]
    score = float(np.average(scores, weights=weights)) if sum(weights) > 0 else 0.0
    area = int(mask.sum())
    unit = float(record["area"]) / area if area else 1.0
    objects = object_list(mask, unit)
    present = record.get("present")
    answer: dict[str, Any] = {
        "text": text,
        "score": round(score, 4),
        "present": present,
        **presence_note(present),
        "presence": None,
        "bbox": None,
        "area": area,
        "area_map": record.get("area"),
        "area_units": record.get("area_units"),
        "object_count": len(objects),
        "objects": objects,
        "truncated": bool(record.get("truncated", False)),
        "mask_png": png_base64(mask.astype(np.uint8) * 255),
        "correlation_png": [],
        "tiles": record.get("tiles"),
        "tiles_skipped": record.get("tiles_skipped"),
        "preview_png": base64.b64encode(Path(files["preview"]).read_bytes()).decode("ascii"),
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
    bands: tuple[int, ...] | None = None
    stretch: Stretch | None = None
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
                        bands=self.bands,
                        stretch=self.stretch,
                    )
                except (ImageReadError, SceneTooLargeError, BandsError) as error:
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
            "mode": "scene",
            "tile": record.get("tile"),
            "overlap": record.get("overlap"),
            "tiles": record.get("tiles"),
        }
        return answers, image
