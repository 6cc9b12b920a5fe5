"""Overlay picture of one prediction: the image (enlarged when small), each predicted object
drawn outline-first (a ring just outside it over a dark halo, so the object keeps its own
colour), its bounding box, an optional ground-truth outline, the referring expression in a
caption strip above the image (never over it) and a legend strip below it. The colours are the
shared scheme of :mod:`btdnet.colormap`."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from btdnet.colormap import BOX_COLOR, HALO_COLOR, LEGEND, PREDICTION_COLOR, TRUTH_COLOR

DEFAULT_COLOR = PREDICTION_COLOR


def _line_width(height: int, width: int) -> int:
    """Contour and box width in pixels: 1 for small images, thicker for large ones."""
    return max(1, round(max(height, width) / 400))


def inner_contour(mask: np.ndarray, thickness: int) -> np.ndarray:
    """Bool (H, W) band of the mask's pixels within ``thickness`` pixels of its border.

    Pixels outside the image count as background, so a mask touching the image edge gets a
    contour along it.
    """
    eroded = mask.copy()
    for _ in range(thickness):
        padded = np.pad(eroded, 1, constant_values=False)  # (H + 2, W + 2)
        eroded = (
            padded[1:-1, 1:-1]
            & padded[:-2, 1:-1]
            & padded[2:, 1:-1]
            & padded[1:-1, :-2]
            & padded[1:-1, 2:]
        )
    return mask & ~eroded


def dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """Bool (H, W) mask grown by ``steps`` pixels (4-neighbourhood, a diamond)."""
    grown = mask.copy()
    for _ in range(steps):
        padded = np.pad(grown, 1, constant_values=False)  # (H + 2, W + 2)
        grown = (
            padded[1:-1, 1:-1]
            | padded[:-2, 1:-1]
            | padded[2:, 1:-1]
            | padded[1:-1, :-2]
            | padded[1:-1, 2:]
        )
    return grown


def outer_ring(mask: np.ndarray, thickness: int) -> tuple[np.ndarray, np.ndarray]:
    """Bool (H, W) ring of ``thickness`` pixels just outside the mask, and the one-pixel halo
    outside that ring: the outline drawn around an object without covering any of its pixels."""
    ring_outer = dilate(mask, thickness)
    return ring_outer & ~mask, dilate(ring_outer, 1) & ~ring_outer


def draw_outline(
    canvas: np.ndarray, mask: np.ndarray, thickness: int, color: tuple[int, int, int]
) -> None:
    """Outline-first drawing on uint8 (H, W, 3) ``canvas``: a ring of ``color`` outside the
    mask over a dark halo; the mask's own pixels are left as they are."""
    ring, halo = outer_ring(mask, thickness)
    canvas[halo & ~mask] = HALO_COLOR
    canvas[ring] = color


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's default font at ``size`` pixels (its fixed bitmap font if FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # old Pillow or no FreeType support
        return ImageFont.load_default()


def wrap_text(
    text: str, draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, max_width: int
) -> list[str]:
    """Split ``text`` into lines no wider than ``max_width`` pixels (words longer than a
    line are cut)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if draw.textlength(candidate, font=font) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for char in word:  # place the word, cutting it when it alone is too wide
            if current and draw.textlength(current + char, font=font) > max_width:
                lines.append(current)
                current = ""
            current += char
    if current:
        lines.append(current)
    return lines or [""]


def caption_text(
    text: str,
    *,
    score: float | None = None,
    found: bool | None = True,
    presence: float | None = None,
) -> str:
    """The banner: the expression, then ``[not found]`` or the score (``found`` None: a model
    that cannot tell absence, ``best guess``), and the presence."""
    notes = []
    if found is False:
        notes.append("not found")
    elif found is None:
        notes.append("best guess")
    if found is not False and score is not None:
        notes.append(f"score {score:.2f}")
    if presence is not None:
        notes.append(f"presence {presence:.2f}")
    return f"{text}  [{', '.join(notes)}]" if notes else text


def upscale_factor(height: int, width: int, min_size: int) -> int:
    """Integer factor that brings the longer side to at least ``min_size`` (1 when it is)."""
    return max(1, -(-min_size // max(1, max(height, width))))


def _enlarge(array: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of an (H, W[, C]) array by an integer factor."""
    if factor == 1:
        return array
    return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


def _caption_strip(text: str, width: int) -> Image.Image:
    """A dark strip of ``width`` pixels holding ``text`` wrapped onto as many lines as needed."""
    font_size = int(np.clip(width // 32, 12, 48))
    font = _font(font_size)
    margin = max(4, font_size // 3)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = wrap_text(text, probe, font, max(1, width - 2 * margin))
    line_height = font_size + font_size // 4
    strip = Image.new("RGB", (width, 2 * margin + line_height * len(lines)), (24, 24, 24))
    draw = ImageDraw.Draw(strip)
    for row, line in enumerate(lines):
        draw.text((margin, margin + row * line_height), line, font=font, fill=(255, 255, 255))
    return strip


def legend_strip(width: int, keys: list[str]) -> Image.Image:
    """A dark strip ``width`` pixels wide naming the colours of ``keys`` (see ``LEGEND``)."""
    font_size = int(np.clip(width // 40, 11, 32))
    font = _font(font_size)
    margin = max(4, font_size // 3)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    entries = [(color, words) for key, color, words in LEGEND if key in keys]
    line_height = font_size + font_size // 3
    lines, x = 1, margin
    for _, words in entries:  # lay out to know the height first
        step = font_size * 2 + int(probe.textlength(words, font=font)) + 2 * margin
        if x > margin and x + step > width:
            lines, x = lines + 1, margin
        x += step
    strip = Image.new("RGB", (width, 2 * margin + line_height * lines), (24, 24, 24))
    draw = ImageDraw.Draw(strip)
    x, y = margin, margin
    for color, words in entries:
        step = font_size * 2 + int(draw.textlength(words, font=font)) + 2 * margin
        if x > margin and x + step > width:
            x, y = margin, y + line_height
        swatch = (x, y + 2, x + font_size, y + font_size - 2)
        draw.rectangle(swatch, outline=color, width=max(2, font_size // 6))
        draw.text((x + font_size + margin, y), words, font=font, fill=(255, 255, 255))
        x += step
    return strip


def frame(image: Image.Image, caption: str, legend: list[str]) -> Image.Image:
    """``image`` with the caption strip above it and the legend strip below it."""
    top = _caption_strip(caption, image.width)
    bottom = legend_strip(image.width, legend)
    framed = Image.new("RGB", (image.width, top.height + image.height + bottom.height))
    framed.paste(top, (0, 0))
    framed.paste(image, (0, top.height))
    framed.paste(bottom, (0, top.height + image.height))
    return framed


def render_overlay(
    pixels: np.ndarray,
    mask: np.ndarray,
    text: str,
    *,
    bbox: tuple[int, int, int, int] | None = None,
    score: float | None = None,
    color: tuple[int, int, int] = PREDICTION_COLOR,
    alpha: float = 0.0,
    found: bool | None = True,
    presence: float | None = None,
    truth: np.ndarray | None = None,
    truth_color: tuple[int, int, int] = TRUTH_COLOR,
    iou: float | None = None,
    min_size: int = 512,
) -> Image.Image:
    """Draw one prediction over its image, caption above, legend below.

    The image is enlarged (nearest neighbour, integer factor) until its longer side is at
    least ``min_size`` pixels, so that small inputs stay readable; the caption never covers
    the image, so targets "at the top" stay visible. The prediction is drawn outline-first: a
    ring just outside the mask over a dark halo, the mask's pixels untouched (``alpha`` > 0
    adds a translucent fill); the box is drawn around the ring in ``BOX_COLOR``; a ground
    truth, when given, is outlined inside its mask in ``truth_color``.

    Args:
        pixels: uint8 (H, W, 3) RGB image.
        mask: bool (H, W) predicted mask, same size.
        text: the referring expression, written (wrapped) above the image.
        bbox: ``(x1, y1, x2, y2)`` box with exclusive ``x2, y2`` in input pixels, drawn when
            given.
        score: confidence written after the expression when given.
        color: RGB colour of the prediction's ring.
        alpha: opacity of an optional fill of the mask in [0, 1] (default none).
        found: False for a "no target" answer (the caption says "not found"), None for a model
            that cannot tell absence (the caption says "best guess").
        presence: the presence probability, written after the expression when given.
        truth: optional bool (H, W) ground-truth mask, outlined.
        iou: the sample's IoU, written in the caption when given.
        min_size: the longer side of the drawn image is at least this many pixels.

    Returns:
        An RGB PIL image ``k * W`` wide and ``k * H`` plus the two strips high, with
        ``k = upscale_factor(H, W, min_size)``.
    """
    if pixels.shape[:2] != mask.shape or (truth is not None and truth.shape != mask.shape):
        shapes = [pixels.shape[:2], mask.shape] + ([truth.shape] if truth is not None else [])
        raise ValueError(f"image and mask sizes differ: {shapes}")
    factor = upscale_factor(*mask.shape, min_size)
    big_mask = _enlarge(np.asarray(mask, dtype=bool), factor)  # (kH, kW)
    canvas = _enlarge(np.asarray(pixels, dtype=np.uint8), factor).copy()  # (kH, kW, 3)
    thickness = max(2, _line_width(*big_mask.shape))
    if alpha > 0 and big_mask.any():  # only the masked pixels are blended, in float
        tint = np.asarray(color, dtype=np.float32)
        blended = (1.0 - alpha) * canvas[big_mask].astype(np.float32) + alpha * tint
        canvas[big_mask] = np.round(blended).astype(np.uint8)
    draw_outline(canvas, big_mask, thickness, color)
    legend = ["prediction"]
    if truth is not None:
        big_truth = _enlarge(np.asarray(truth, dtype=bool), factor)
        canvas[inner_contour(big_truth, thickness)] = truth_color
        legend.append("truth")
    image = Image.fromarray(canvas)
    if bbox is not None:
        pad = thickness + 1  # around the ring and its halo
        x1, y1, x2, y2 = (v * factor for v in bbox)
        box = (x1 - pad - 1, y1 - pad - 1, x2 + pad, y2 + pad)
        ImageDraw.Draw(image).rectangle(box, outline=BOX_COLOR, width=max(1, thickness // 2))
        legend.insert(1, "box")
    caption = caption_text(text, score=score, found=found, presence=presence)
    if iou is not None:
        caption = f"{caption}  IoU {iou:.2f}"
    return frame(image, caption, legend)
