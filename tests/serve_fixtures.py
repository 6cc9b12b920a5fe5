"""Helpers for the server tests: images as bytes, masks from base64, a live server."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from btdnet.serve.local import serve_in_thread as live_server

__all__ = ["decode_png", "live_server", "png_bytes", "random_image"]


def png_bytes(pixels: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def random_image(seed: int, height: int, width: int) -> np.ndarray:
    """A reproducible (H, W, 3) uint8 image."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def decode_png(encoded: str) -> np.ndarray:
    """Base64 PNG -> uint8 array."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))
