"""Read the closed-set image and label files (PNG, 8-bit TIFF) into numpy arrays.

Pillow reads every official file (LoveDA PNGs, ISPRS 8-bit 3-channel TIFFs). When Pillow
cannot decode a TIFF (an unusual compression, say), rasterio is tried if it is installed
(``pip install btdnet[geo]``); it stays an optional dependency.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bicor.data.errors import ClosedSetDataError

# What Pillow raises on files it cannot decode (then rasterio gets a try). A decompression
# bomb is not one of them: it is refused, never handed to rasterio to decode in full.
_PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError)


def too_many_pixels(path: Path, height: int, width: int) -> ClosedSetDataError:
    """The error for an image above Pillow's decompression-bomb limit (``MAX_IMAGE_PIXELS``)."""
    return ClosedSetDataError(
        f"{path}: {width}x{height} pixels, above the limit of {Image.MAX_IMAGE_PIXELS} "
        "(a decompression bomb?); refused"
    )


def _bomb(path: Path, error: Exception) -> ClosedSetDataError:
    """A one-line error for Pillow's ``DecompressionBombError`` on ``path``."""
    return ClosedSetDataError(
        f"{path}: too many pixels ({str(error).split(',')[0]}; a decompression bomb?); refused"
    )


@contextmanager
def _quiet_rasterio() -> Iterator[None]:
    """No NotGeoreferencedWarning: a plain PNG or TIFF has no geotransform, as expected here."""
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def _read_with_rasterio(path: Path, reason: str) -> np.ndarray:
    """(H, W, C) array read by rasterio, or an error naming ``path`` and Pillow's ``reason``."""
    try:
        import rasterio  # optional dependency
    except ImportError:
        raise ClosedSetDataError(
            f"{path}: Pillow cannot read it ({reason}); install rasterio to try it instead"
        ) from None
    try:
        with _quiet_rasterio(), rasterio.open(path) as source:
            limit = Image.MAX_IMAGE_PIXELS
            if limit is not None and source.height * source.width > limit:
                raise too_many_pixels(path, source.height, source.width)
            bands = source.read()  # (C, H, W)
    except ClosedSetDataError:
        raise
    except Exception as error:  # rasterio raises its own error family
        raise ClosedSetDataError(
            f"{path}: unreadable image (Pillow: {reason}; rasterio: {error})"
        ) from error
    return np.ascontiguousarray(np.moveaxis(bands, 0, -1))  # (H, W, C)


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise ClosedSetDataError(f"{path}: file not found")


def read_rgb(path: str | Path) -> np.ndarray:
    """Read a 3-channel 8-bit image (RGB, IRRG or a colour label) as (H, W, 3) uint8.

    Palette ("P") images are expanded to their colours and an alpha band is dropped;
    single-band or 16-bit images raise :class:`ClosedSetDataError` naming the file.
    """
    path = Path(path)
    _require_file(path)
    array = None
    try:
        with Image.open(path) as image:
            mode, bands = image.mode, len(image.getbands())
            if mode in ("RGB", "RGBA", "P", "PA"):
                array = np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as error:
        raise _bomb(path, error) from None
    except _PIL_ERRORS as error:
        array = _read_with_rasterio(path, str(error))
        if array.dtype != np.uint8 or array.shape[-1] < 3:
            raise ClosedSetDataError(
                f"{path}: expected a 3-channel 8-bit image, found {array.shape[-1]} band(s) "
                f"of {array.dtype}"
            ) from error
        array = array[..., :3]
    if array is None:
        raise ClosedSetDataError(
            f"{path}: expected a 3-channel 8-bit image, found Pillow mode {mode!r} "
            f"({bands} band(s))"
        )
    return np.ascontiguousarray(array, dtype=np.uint8)


def read_class_values(path: str | Path) -> np.ndarray:
    """Read a single-band 8-bit mask (LoveDA ``masks_png``) as (H, W) uint8 values."""
    path = Path(path)
    _require_file(path)
    array = None
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode in ("L", "P"):
                array = np.asarray(image)  # "P": the stored indices are the values
    except Image.DecompressionBombError as error:
        raise _bomb(path, error) from None
    except _PIL_ERRORS as error:
        array = _read_with_rasterio(path, str(error))
        if array.dtype != np.uint8 or array.shape[-1] != 1:
            raise ClosedSetDataError(
                f"{path}: expected a single-band 8-bit mask, found {array.shape[-1]} band(s) "
                f"of {array.dtype}"
            ) from error
        array = array[..., 0]
    if array is None:
        raise ClosedSetDataError(
            f"{path}: expected a single-band 8-bit mask, found Pillow mode {mode!r}"
        )
    return np.ascontiguousarray(array, dtype=np.uint8)


def read_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image, read from its header without decoding the pixels."""
    path = Path(path)
    _require_file(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            return int(height), int(width)
    except Image.DecompressionBombError as error:
        raise _bomb(path, error) from None
    except _PIL_ERRORS as error:
        try:
            import rasterio  # optional dependency
        except ImportError:
            raise ClosedSetDataError(f"{path}: unreadable image ({error})") from None
        try:
            with _quiet_rasterio(), rasterio.open(path) as source:
                return int(source.height), int(source.width)
        except Exception as rio_error:  # rasterio raises its own error family
            raise ClosedSetDataError(
                f"{path}: unreadable image (Pillow: {error}; rasterio: {rio_error})"
            ) from rio_error
