"""Overlay picture of one prediction: the image (enlarged when small), the mask in translucent
colour with its outline and bounding box, an optional ground-truth outline, and the referring
expression in a caption strip above the image (never over it)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEFAULT_COLOR: tuple[int, int, int] = (255, 48, 48)
TRUTH_COLOR: tuple[int, int, int] = (255, 200, 0)


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
    text: str, *, score: float | None = None, found: bool = True, presence: float | None = None
) -> str:
    """The banner: the expression, then ``[not found]`` or the score, and the presence."""
    notes = []
    if not found:
        notes.append("not found")
    elif score is not None:
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


def render_overlay(
    pixels: np.ndarray,
    mask: np.ndarray,
    text: str,
    *,
    bbox: tuple[int, int, int, int] | None = None,
    score: float | None = None,
    color: tuple[int, int, int] = DEFAULT_COLOR,
    alpha: float = 0.45,
    found: bool = True,
    presence: float | None = None,
    truth: np.ndarray | None = None,
    truth_color: tuple[int, int, int] = TRUTH_COLOR,
    iou: float | None = None,
    min_size: int = 512,
) -> Image.Image:
    """Draw one prediction over its image, with the caption in a strip above the image.

    The image is enlarged (nearest neighbour, integer factor) until its longer side is at
    least ``min_size`` pixels, so that small inputs stay readable; the caption never covers
    the image, so targets "at the top" stay visible. The prediction is filled translucent and
    outlined; a ground truth, when given, is outlined in ``truth_color`` (a missed object shows
    as an outline without fill).

    Args:
        pixels: uint8 (H, W, 3) RGB image.
        mask: bool (H, W) predicted mask, same size.
        text: the referring expression, written (wrapped) above the image.
        bbox: ``(x1, y1, x2, y2)`` box with exclusive ``x2, y2`` in input pixels, drawn when
            given.
        score: confidence written after the expression when given.
        color: RGB colour of the mask fill, contour and box.
        alpha: opacity of the mask fill in [0, 1].
        found: False for a "no target" answer (generalized referring): the caption says
            "not found" instead of giving a score.
        presence: the presence probability, written after the expression when given.
        truth: optional bool (H, W) ground-truth mask, outlined.
        iou: the sample's IoU, written in the caption when given.
        min_size: the longer side of the drawn image is at least this many pixels.

    Returns:
        An RGB PIL image ``k * W`` wide and ``k * H`` plus the caption strip high, with
        ``k = upscale_factor(H, W, min_size)``.
    """
    if pixels.shape[:2] != mask.shape or (truth is not None and truth.shape != mask.shape):
        shapes = [pixels.shape[:2], mask.shape] + ([truth.shape] if truth is not None else [])
        raise ValueError(f"image and mask sizes differ: {shapes}")
    factor = upscale_factor(*mask.shape, min_size)
    big_mask = _enlarge(np.asarray(mask, dtype=bool), factor)  # (kH, kW)
    canvas = _enlarge(np.asarray(pixels, dtype=np.uint8), factor).copy()  # (kH, kW, 3)
    thickness = max(2, _line_width(*big_mask.shape))
    tint = np.asarray(color, dtype=np.float32)
    if big_mask.any():  # uint8 image; only the masked pixels are blended in float
        blended = (1.0 - alpha) * canvas[big_mask].astype(np.float32) + alpha * tint
        canvas[big_mask] = np.round(blended).astype(np.uint8)
    canvas[inner_contour(big_mask, thickness)] = color
    if truth is not None:
        big_truth = _enlarge(np.asarray(truth, dtype=bool), factor)
        canvas[inner_contour(big_truth, thickness)] = truth_color
    image = Image.fromarray(canvas)
    if bbox is not None:
        x1, y1, x2, y2 = (v * factor for v in bbox)
        ImageDraw.Draw(image).rectangle((x1, y1, x2 - 1, y2 - 1), outline=color, width=thickness)
    caption = caption_text(text, score=score, found=found, presence=presence)
    if iou is not None:
        caption = f"{caption}  IoU {iou:.2f}"
    strip = _caption_strip(caption, image.width)
    framed = Image.new("RGB", (image.width, strip.height + image.height))
    framed.paste(strip, (0, 0))
    framed.paste(image, (0, strip.height))
    return framed
