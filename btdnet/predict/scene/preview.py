"""``<name>_preview.png``: a scene result one can look at.

The scene is read downsampled (its longer side at most :data:`PREVIEW_MAX_SIDE` pixels, with
the bands and stretch the model saw), the mask is read at the same size (a preview pixel is on
when any scene pixel under it is), and every object's polygon at that size (its
polygon's outline) is drawn outline-first in the shared colour scheme
(:mod:`btdnet.colormap`): a ring just outside it over a dark halo, its own pixels left
visible. A caption strip above gives the expression,
the object count and the tiling; a legend strip below names the colours. The file is written
through :func:`btdnet.safe_write.atomic_output` (a temporary file renamed into place, never
through a link).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from btdnet.colormap import PREDICTION_COLOR
from btdnet.raster.geo import require_rasterio
from btdnet.raster.source import SceneSource
from btdnet.safe_write import atomic_output

PREVIEW_MAX_SIDE = 1024


def preview_mask(mask_path: Path, height: int, width: int) -> np.ndarray:
    """Bool (height, width) mask of the scene mask file read downsampled: a pixel is on when
    any scene pixel it covers is (so that small objects do not vanish)."""
    rasterio = require_rasterio("the scene preview")
    from rasterio.enums import Resampling

    from btdnet.predict.scene.writer import quiet_georeference

    with quiet_georeference(), rasterio.open(mask_path) as dataset:
        average = dataset.read(1, out_shape=(height, width), resampling=Resampling.average)
    return average > 0  # (h, w)


def render_preview(
    source: SceneSource, mask_path: Path, caption: str, max_side: int = PREVIEW_MAX_SIDE
) -> Image.Image:
    """The preview picture: downsampled scene, objects outlined, caption and legend."""
    from btdnet.predict.overlay import draw_outline, frame, upscale_factor

    rgb = source.overview(max_side)  # (h, w, 3)
    height, width = rgb.shape[:2]
    mask = preview_mask(mask_path, height, width)  # (h, w)
    scale = upscale_factor(height, width, 512)  # tiny scenes: enlarged, like overlays
    if scale > 1:
        rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
        mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
    canvas = rgb.copy()
    draw_outline(canvas, mask, 1 if scale == 1 else 2, PREDICTION_COLOR)
    return frame(Image.fromarray(canvas), caption, ["prediction"])


def write_preview(source: SceneSource, mask_path: Path, target: Path, caption: str) -> Path:
    """Render the preview and write it to ``target`` (PNG, atomically, no link followed)."""
    picture = render_preview(source, mask_path, caption)
    with atomic_output(target) as temporary:
        picture.save(temporary, format="PNG")
    return target


__all__ = ["PREVIEW_MAX_SIDE", "render_preview", "write_preview"]
