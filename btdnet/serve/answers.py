"""The JSON answer of ``POST /predict``: masks as base64 PNG, heat pictures, geo outputs.

Per text, in request order::

    {"text", "score", "present", "presence", "bbox", "area", "truncated",
     "mask_png",            # base64 PNG, 8-bit grey 0/255, at the image's size
     "correlation_png",     # per BSC stage, base64 PNG heat picture at that stage's size
     "geojson",             # GeoTIFF uploads only: FeatureCollection in the image's CRS
     "mask_geotiff"}        # GeoTIFF uploads only: base64 GeoTIFF of the mask (LZW)

``present`` is true (found), false ("not found": the mask is empty) or null for a model
without a presence head, which cannot say absent (``present_note`` says so; ``presence`` is
null too); it is never true with an empty mask.
"""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from btdnet.colormap import colorize
from btdnet.predict.predictor import Prediction
from btdnet.predict.vectors import mask_to_geojson
from btdnet.presence import presence_note
from btdnet.raster.geo import write_mask_geotiff
from btdnet.raster.image_io import LoadedImage

PREVIEW_MAX_SIDE = 1024


def png_base64(pixels: np.ndarray) -> str:
    """(H, W) or (H, W, 3) uint8 -> base64 of its PNG encoding."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def mask_geotiff_base64(mask: np.ndarray, image: LoadedImage) -> str:
    """The mask as a GeoTIFF with the image's CRS and transform, base64-encoded."""
    assert image.geo is not None
    with tempfile.TemporaryDirectory(prefix="btdnet-serve-") as folder:
        path = write_mask_geotiff(Path(folder) / "mask.tif", mask, image.geo)
        return base64.b64encode(path.read_bytes()).decode("ascii")


def preview_base64(image: LoadedImage, max_side: int = PREVIEW_MAX_SIDE) -> str:
    """The RGB the model saw, shrunk to at most ``max_side`` pixels a side, as base64 PNG.

    Browsers cannot show TIFF or 16-bit data; the page draws overlays on this picture.
    """
    picture = Image.fromarray(image.pixels)
    if max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def prediction_answer(prediction: Prediction, image: LoadedImage) -> dict[str, Any]:
    """The JSON object of one text's prediction (see the module docstring)."""
    answer: dict[str, Any] = {
        "text": prediction.text,
        "score": round(float(prediction.score), 4),
        "present": prediction.present,
        **presence_note(prediction.present),
        "presence": _rounded(getattr(prediction, "presence", None)),
        "bbox": list(prediction.bbox) if prediction.bbox is not None else None,
        "area": int(prediction.area),
        "truncated": bool(prediction.truncated),
        "mask_png": png_base64(prediction.mask.astype(np.uint8) * 255),
        "correlation_png": [png_base64(colorize(c)) for c in prediction.correlation],
    }
    if image.geo is not None:
        properties = {"text": prediction.text, "score": answer["score"]}
        answer["geojson"] = mask_to_geojson(prediction.mask, image.geo, properties)
        answer["mask_geotiff"] = mask_geotiff_base64(prediction.mask, image)
    return answer


def image_answer(image: LoadedImage) -> dict[str, Any]:
    """What the answer says about the uploaded image."""
    info: dict[str, Any] = {
        "name": str(image.path),
        "width": image.width,
        "height": image.height,
        "georeferenced": image.geo is not None,
    }
    if image.geo is not None:
        info["crs_epsg"] = image.geo.epsg
        info["transform"] = list(image.geo.transform)
    return info


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)
