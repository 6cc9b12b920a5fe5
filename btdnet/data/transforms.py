"""Image and mask reading, resizing and normalisation for referring samples.

The LAVT family resizes with PIL: the image bilinear, the mask nearest, both to a square of
side ``S`` (no crop, no flip: "left"/"right" in an expression would lie). Images are then
scaled to [0, 1] and normalised with the ImageNet mean and standard deviation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from btdnet.data.errors import DatasetError
from btdnet.normalization import normalize_array

# Single-channel modes whose pixel values are used as they are.
_GRAY_MODES = ("L", "I", "I;16", "I;16B", "I;16L", "F")


def _open_decoded(path: Path, what: str) -> Image.Image:
    """Open an image file and decode all its pixels; errors name the file."""
    if not path.is_file():
        raise DatasetError(f"{path}: {what} file not found")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... on broken files
        raise DatasetError(f"{path}: cannot decode {what} ({type(exc).__name__}: {exc})") from exc


def read_rgb_image(path: str | Path) -> Image.Image:
    """Read an image file as an 8-bit RGB PIL image (grey and palette images are expanded)."""
    image = _open_decoded(Path(path), "image")
    return image if image.mode == "RGB" else image.convert("RGB")


def read_gray_array(path: str | Path) -> np.ndarray:
    """Read a single-channel mask file as an (H, W) array of its pixel values.

    Grey and integer modes keep their values; bilevel images give 0/255; palette and colour
    images are converted to 8-bit luminance.
    """
    image = _open_decoded(Path(path), "mask")
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8) * 255
    if image.mode not in _GRAY_MODES:
        image = image.convert("L")
    return np.asarray(image)


def read_image_size(path: str | Path) -> tuple[int, int] | None:
    """(H, W) from the file header without decoding pixels; ``None`` when the header is bad."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # the per-item read reports the problem with its cause
        return None
    return height, width


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a bool (H, W) mask to (height, width) with PIL's nearest neighbour."""
    if mask.shape == (height, width):
        return mask
    image = Image.fromarray(mask.astype(np.uint8))
    resized = image.resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(resized) > 0


def image_to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """RGB PIL image -> float32 (3, size, size), resized bilinear, ImageNet-normalised."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return normalize_array(np.asarray(image))  # (3, S, S)


def mask_to_tensor(mask: np.ndarray, size: int) -> torch.Tensor:
    """Bool (H, W) mask -> int64 (size, size) 0/1 tensor, resized nearest."""
    resized = resize_mask(mask, size, size)
    return torch.from_numpy(resized.astype(np.int64))
