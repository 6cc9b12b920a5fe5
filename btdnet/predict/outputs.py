"""Files and JSON record written for one prediction by ``btdnet-predict``.

Per prompt, in the output folder, with ``<name> = <image stem>__<index>_<slug of the text>``:

- ``<name>.png``: the mask, 8-bit grey, 0 or 255, at the image's original size;
- ``<name>_overlay.png``: the image with the mask, its box and the expression drawn on it
  (a "no target" answer of a model with a presence head: the banner says "not found");
- for georeferenced inputs also ``<name>.tif`` (the mask as a GeoTIFF with the input's CRS
  and transform) and ``<name>.geojson`` (the mask's polygons, RFC 7946 WGS 84 by default:
  :mod:`btdnet.predict.vectors`).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from btdnet.predict.overlay import render_overlay
from btdnet.predict.predictor import Prediction
from btdnet.predict.vectors import VectorOptions, mask_to_geojson
from btdnet.presence import presence_note
from btdnet.raster.geo import write_geojson, write_mask_geotiff
from btdnet.raster.image_io import LoadedImage, write_mask_png
from btdnet.safe_write import atomic_output

SLUG_MAX_LENGTH = 40


def slugify(text: str, max_length: int = SLUG_MAX_LENGTH) -> str:
    """File-name-safe form of a text: ASCII lower case, words joined by '-', at most
    ``max_length`` characters; ``"text"`` when nothing is left (e.g. non-Latin scripts)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or "text"


def output_name(image_path: str | Path, index: int, text: str) -> str:
    """``<image stem>__<index>_<slug of text>``, the common stem of a prompt's files."""
    return f"{Path(image_path).stem}__{index}_{slugify(text)}"


def write_prediction_files(
    out_dir: Path,
    name: str,
    image: LoadedImage,
    prediction: Prediction,
    vectors: VectorOptions | None = None,
) -> dict[str, str]:
    """Write the mask, the overlay and (georeferenced input) the GeoTIFF mask and GeoJSON.

    Each file is written to a temporary name and renamed when complete; a destination that is
    a symbolic link is refused. If any file fails, the ones already written for this prompt
    are removed, so no output is left without its JSON record.

    Returns:
        ``{"mask": ..., "overlay": ...}`` plus ``"mask_geotiff"`` and ``"geojson"`` for
        georeferenced inputs: the paths of the written files.
    """
    files: dict[str, str] = {}
    try:
        with atomic_output(out_dir / f"{name}.png") as tmp:
            write_mask_png(tmp, prediction.mask)
        files["mask"] = str(out_dir / f"{name}.png")
        overlay = render_overlay(
            image.pixels,
            prediction.mask,
            prediction.text,
            bbox=prediction.bbox,
            score=prediction.score,
            found=prediction.present,
            presence=prediction.presence,
        )
        with atomic_output(out_dir / f"{name}_overlay.png") as tmp:
            overlay.save(tmp)
        files["overlay"] = str(out_dir / f"{name}_overlay.png")
        if image.geo is not None:
            _write_geo_files(out_dir, name, image, prediction, files, vectors)
    except BaseException:
        for written in files.values():
            Path(written).unlink(missing_ok=True)
        raise
    return files


def _write_geo_files(
    out_dir: Path,
    name: str,
    image: LoadedImage,
    prediction: Prediction,
    files: dict[str, str],
    vectors: VectorOptions | None,
) -> None:
    with atomic_output(out_dir / f"{name}.tif") as tmp:
        write_mask_geotiff(tmp, prediction.mask, image.geo)
    files["mask_geotiff"] = str(out_dir / f"{name}.tif")
    properties = {"text": prediction.text, "score": round(prediction.score, 4)}
    polygons = mask_to_geojson(prediction.mask, image.geo, properties, vectors)
    with atomic_output(out_dir / f"{name}.geojson") as tmp:
        write_geojson(tmp, polygons)
    files["geojson"] = str(out_dir / f"{name}.geojson")


def prediction_record(
    image_path: str | Path, prediction: Prediction, files: dict[str, str]
) -> dict[str, Any]:
    """The JSON line of one prediction.

    Keys: ``image``, ``text``, ``score`` (mean probability inside the mask, 0 when empty),
    ``bbox`` (``[x1, y1, x2, y2]`` pixels, x2/y2 exclusive, or null), ``area`` (pixels),
    ``truncated`` (the text was cut to the model's token limit), ``present`` (true: found;
    false: "not found", the mask is empty, ``area`` 0 and ``bbox`` null; null: the model has
    no presence head and cannot say absent, with ``present_note`` saying so), ``presence``
    (the presence
    probability, null for a model without a presence head), then the written files:
    ``mask``, ``overlay`` and, for georeferenced inputs, ``mask_geotiff`` and ``geojson``.
    """
    return {
        "image": str(image_path),
        "text": prediction.text,
        "score": round(prediction.score, 4),
        "bbox": list(prediction.bbox) if prediction.bbox is not None else None,
        "area": prediction.area,
        "truncated": prediction.truncated,
        "present": prediction.present,
        **presence_note(prediction.present),
        "presence": None if prediction.presence is None else round(prediction.presence, 4),
        **files,
    }
