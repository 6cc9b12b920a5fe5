"""Overlay picture of one prediction: the image, the mask in translucent colour, its contour
and bounding box, and the referring expression written in a banner at the top."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEFAULT_COLOR: tuple[int, int, int] = (255, 48, 48)


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
) -> Image.Image:
    """Draw one prediction over its image.

    Args:
        pixels: uint8 (H, W, 3) RGB image.
        mask: bool (H, W) predicted mask, same size.
        text: the referring expression, written (wrapped) in a dark banner at the top.
        bbox: ``(x1, y1, x2, y2)`` box with exclusive ``x2, y2``, drawn when given.
        score: confidence written after the expression when given.
        color: RGB colour of the mask fill, contour and box.
        alpha: opacity of the mask fill in [0, 1].
        found: False for a "no target" answer (generalized referring): the banner says
            "not found" instead of giving a score.
        presence: the presence probability, written after the expression when given.

    Returns:
        An RGB PIL image of size (W, H).
    """
    if pixels.shape[:2] != mask.shape:
        raise ValueError(f"image {pixels.shape[:2]} and mask {mask.shape} sizes differ")
    height, width = mask.shape
    thickness = _line_width(height, width)
    canvas = pixels.astype(np.float32)  # (H, W, 3)
    tint = np.asarray(color, dtype=np.float32)
    canvas[mask] = (1.0 - alpha) * canvas[mask] + alpha * tint
    canvas[inner_contour(mask, thickness)] = tint
    image = Image.fromarray(np.round(canvas).astype(np.uint8)).convert("RGBA")

    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if bbox is not None:
        x1, y1, x2, y2 = bbox
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline=(*color, 255), width=thickness)

    font_size = int(np.clip(width // 30, 12, 96))
    font = _font(font_size)
    margin = max(4, font_size // 3)
    caption = caption_text(text, score=score, found=found, presence=presence)
    lines = wrap_text(caption, draw, font, max(1, width - 2 * margin))
    line_height = font_size + font_size // 4
    banner_height = min(height, 2 * margin + line_height * len(lines))
    draw.rectangle((0, 0, width, banner_height), fill=(0, 0, 0, 160))
    for row, line in enumerate(lines):
        draw.text((margin, margin + row * line_height), line, font=font, fill=(255, 255, 255, 255))
    return Image.alpha_composite(image, layer).convert("RGB")
