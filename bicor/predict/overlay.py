"""The overlay of a class map: the image with each class's colour laid over it, and a legend.

The picture is the downsampled image (at most :data:`OVERLAY_SIDE` pixels on its long side)
with the class colours blended at ``alpha`` (no-data pixels left as they are), and a legend
panel on its right: one swatch per class, its name and its share of the valid pixels.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bicor.data.palettes import Palette

OVERLAY_SIDE = 2048
NODATA = 255


class Thumbnail:
    """Collects every ``factor``-th row and column of the strips of a scene (nearest)."""

    def __init__(self, height: int, width: int, side: int = OVERLAY_SIDE) -> None:
        self.factor = max(1, math.ceil(max(height, width) / side))
        self.ids: list[np.ndarray] = []
        self.rgb: list[np.ndarray] = []

    def add(self, start: int, ids: np.ndarray, rgb: np.ndarray) -> None:
        """Keep the rows ``y % factor == 0`` of a strip starting at scene row ``start``."""
        rows = np.flatnonzero((np.arange(start, start + ids.shape[0]) % self.factor) == 0)
        self.ids.append(ids[rows, :: self.factor])
        self.rgb.append(rgb[rows, :: self.factor])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (h, w) class ids and uint8 (h, w, 3) RGB of the whole scene."""
        return np.concatenate(self.ids), np.concatenate(self.rgb)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # old Pillow or no FreeType support
        return ImageFont.load_default()


def blend_classes(
    rgb: np.ndarray, ids: np.ndarray, palette: Palette, alpha: float = 0.45
) -> np.ndarray:
    """uint8 (h, w, 3): ``rgb`` with the colour of each pixel's class blended at ``alpha``."""
    colours = palette.lookup_table().astype(np.float32)[ids]  # (h, w, 3)
    mixed = (1 - alpha) * rgb.astype(np.float32) + alpha * colours
    out = np.where((ids != NODATA)[:, :, None], np.round(mixed), rgb)
    return out.astype(np.uint8)


def render_class_overlay(
    rgb: np.ndarray, ids: np.ndarray, palette: Palette, counts: np.ndarray, title: str
) -> Image.Image:
    """The blended picture with a legend panel on its right (see the module docstring)."""
    picture = Image.fromarray(blend_classes(rgb, ids, palette))
    size = max(12, min(24, picture.height // 20))
    font = _font(size)
    line = size + size // 2
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    total = max(1, int(counts[: palette.num_classes].sum()))
    labels = [
        f"{name}  {100.0 * counts[i] / total:.1f} %" for i, name in enumerate(palette.class_names)
    ]
    text_width = max(probe.textlength(t, font=font) for t in [*labels, title])
    panel_width = int(text_width) + 3 * size
    height = max(picture.height, line * (len(labels) + 2))
    canvas = Image.new("RGB", (picture.width + panel_width, height), (255, 255, 255))
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x = picture.width + size // 2
    draw.text((x, size // 2), title, fill=(0, 0, 0), font=font)
    for index, label in enumerate(labels):
        y = size // 2 + line * (index + 1)
        draw.rectangle([x, y, x + size, y + size], fill=palette.colours[index], outline=(0, 0, 0))
        draw.text((x + size + size // 2, y), label, fill=(0, 0, 0), font=font)
    return canvas
