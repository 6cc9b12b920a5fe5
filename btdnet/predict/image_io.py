"""Read a user's image (PNG, JPEG, TIFF, GeoTIFF) as 8-bit RGB, and write masks as PNG.

What the reader does with remote-sensing files:

- TIFF files are read with rasterio when it is installed; their CRS and affine transform are
  kept (:class:`~btdnet.predict.geo.GeoReference`) so that masks can be written back as
  GeoTIFF. Without rasterio, plain TIFFs are read with PIL, and a georeferenced TIFF raises
  :class:`~btdnet.predict.geo.GeoDependencyError` saying how to install it.
- Bands: the first three bands are taken as R, G, B (an IRRG file stays IRRG, as in training);
  one- or two-band files (grey, grey + alpha) use their first band for all three channels.
- Bit depth: 8-bit data is used as it is. Any other type (16-bit, 32-bit, float) is stretched
  per band to 0..255 between its 2nd and 98th percentiles, computed over finite pixels that
  are not the file's nodata value; values outside are clipped, nodata pixels become 0.
- JPEG/PNG files are turned upright by their EXIF orientation, so masks match what viewers show.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image, ImageOps

from btdnet.predict.geo import (
    GEO_INSTALL_HINT,
    GeoDependencyError,
    GeoReference,
    georeference_of,
    require_rasterio,
)

TIFF_SUFFIXES = (".tif", ".tiff")
# TIFF tags that only georeferenced files carry (GeoTIFF spec: pixel scale, tie points,
# transformation matrix, geo key directory).
_GEOTIFF_TAGS = (33550, 33922, 34264, 34735)
# Single-channel PIL modes with more than 8 bits: stretched like 16-bit TIFF bands.
_WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# Above this many valid pixels, percentiles are computed on an even subsample (speed only).
_PERCENTILE_SAMPLE = 4_000_000


class ImageReadError(Exception):
    """An image file is missing or cannot be decoded; the message names the file."""


@dataclass
class LoadedImage:
    """An image ready for the predictor.

    Attributes:
        path: the file it was read from.
        pixels: uint8 (H, W, 3) RGB array at the file's full resolution.
        geo: where the image lies on the ground, ``None`` for plain images.
    """

    path: Path
    pixels: np.ndarray
    geo: GeoReference | None = None

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.pixels.shape[1])


def stretch_to_uint8(band: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """Scale one (H, W) band of any numeric type to uint8 between its 2-98 percentiles.

    Non-finite pixels and pixels equal to ``nodata`` are left out of the percentiles and set
    to 0. A constant band gives all zeros.
    """
    values = band.astype(np.float64)  # (H, W)
    valid = np.isfinite(values)
    if nodata is not None and np.isfinite(nodata):
        valid &= values != nodata
    out = np.zeros(band.shape, dtype=np.uint8)
    if not valid.any():
        return out
    sample = values[valid]
    if sample.size > _PERCENTILE_SAMPLE:
        sample = sample[:: sample.size // _PERCENTILE_SAMPLE + 1]
    low, high = np.percentile(sample, [2.0, 98.0])
    if high <= low:
        return out
    scaled = np.clip((values - low) * (255.0 / (high - low)), 0.0, 255.0)
    out[valid] = np.round(scaled[valid]).astype(np.uint8)
    return out


def bands_to_rgb(bands: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """(C, H, W) bands of any type -> uint8 (H, W, 3) RGB following the rules of this module."""
    if bands.ndim != 3 or bands.shape[0] < 1:
        raise ValueError(f"expected (C, H, W) bands, got shape {bands.shape}")
    chosen = bands[:3] if bands.shape[0] >= 3 else bands[:1].repeat(3, axis=0)  # (3, H, W)
    if chosen.dtype == np.uint8:
        rgb = chosen
    elif chosen.dtype == np.bool_:
        rgb = chosen.astype(np.uint8) * 255
    else:
        rgb = np.stack([stretch_to_uint8(b, nodata) for b in chosen])
    return np.ascontiguousarray(rgb.transpose(1, 2, 0))  # (H, W, 3)


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode == "RGB":
        return np.asarray(image, dtype=np.uint8).copy()
    if image.mode in _WIDE_GRAY_MODES:
        return bands_to_rgb(np.asarray(image)[None])
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _is_geotiff(image: Image.Image) -> bool:
    tags = getattr(image, "tag_v2", None)
    return tags is not None and any(tag in tags for tag in _GEOTIFF_TAGS)


def _read_with_pil(path: Path, is_tiff: bool) -> LoadedImage:
    try:
        with Image.open(path) as opened:
            if is_tiff and _is_geotiff(opened):
                raise GeoDependencyError(
                    f"{path}: is a GeoTIFF; keeping its CRS and transform needs rasterio; "
                    f"{GEO_INSTALL_HINT}"
                )
            image = ImageOps.exif_transpose(opened)
            image.load()
            pixels = _pil_to_rgb(image)
    except GeoDependencyError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... on broken files
        hint = f" (reading this TIFF may need rasterio; {GEO_INSTALL_HINT})" if is_tiff else ""
        raise ImageReadError(
            f"{path}: cannot read image ({type(exc).__name__}: {exc}){hint}"
        ) from exc
    return LoadedImage(path=path, pixels=pixels, geo=None)


def _read_with_rasterio(path: Path, rasterio: ModuleType) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                count = min(dataset.count, 3)
                bands = dataset.read(indexes=list(range(1, count + 1)))  # (C, H, W)
                nodata = dataset.nodata
                geo = georeference_of(dataset)
    except Exception as exc:  # RasterioIOError, CPLE_* errors on broken files
        raise ImageReadError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from exc
    return LoadedImage(path=path, pixels=bands_to_rgb(bands, nodata), geo=geo)


def read_image(path: str | Path) -> LoadedImage:
    """Read a PNG, JPEG or (Geo)TIFF file as uint8 RGB plus its georeference if any.

    Raises:
        ImageReadError: the file is missing, a folder, or cannot be decoded.
        GeoDependencyError: the file is a GeoTIFF and rasterio is not installed.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: image file not found")
    if not path.is_file():
        raise ImageReadError(f"{path}: is not a file")
    is_tiff = path.suffix.lower() in TIFF_SUFFIXES
    if is_tiff:
        try:
            rasterio = require_rasterio(f"{path}: reading a TIFF")
        except GeoDependencyError:
            return _read_with_pil(path, is_tiff=True)
        return _read_with_rasterio(path, rasterio)
    return _read_with_pil(path, is_tiff=False)


def write_mask_png(path: str | Path, mask: np.ndarray) -> Path:
    """Write a bool (H, W) mask as an 8-bit grey PNG with values 0 and 255. Returns the path."""
    path = Path(path)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return path
