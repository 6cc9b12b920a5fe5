"""Read a user's image (PNG, JPEG, TIFF, GeoTIFF) as 8-bit RGB, and write masks as PNG.

What the reader does with remote-sensing files:

- TIFF files are read with rasterio when it is installed; their CRS and affine transform are
  kept (:class:`~btdnet.raster.geo.GeoReference`) so that masks can be written back as
  GeoTIFF. Without rasterio, plain TIFFs are read with PIL, and a georeferenced TIFF raises
  :class:`~btdnet.raster.geo.GeoDependencyError` saying how to install it.
- Bands: the first three bands are taken as R, G, B (an IRRG file stays IRRG, as in training);
  one- or two-band files (grey, grey + alpha) use their first band for all three channels.
- Bit depth: 8-bit data is used as it is. Any other type (16-bit, 32-bit, float) is stretched
  per band to 0..255 between its 2nd and 98th percentiles, computed over finite pixels that
  are not the file's nodata value; values outside are clipped, nodata pixels become 0.
  Complex samples (SAR) are read as their amplitude.
- 16-bit RGB(A) PNGs, which Pillow narrows to their top byte (12-bit data would come out
  near-black), are decoded at full depth and stretched like 16-bit TIFF bands.
- Size: an image above ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`, the same for the
  Pillow and rasterio paths) is refused before its pixels are decoded, pointing to ``--tile``
  (scene mode) or to resizing, instead of exhausting memory.
- JPEG/PNG files are turned upright by their EXIF orientation, so masks match what viewers show.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image, ImageOps

from btdnet.raster.bands import (
    STRETCH_SAMPLE_SIDE,
    BandsError,
    Stretch,
    apply_stretch,
    real_values,
    sample_shape,
    select_bands,
)
from btdnet.raster.geo import (
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


Bands = tuple[int, ...] | None

# Refused above this many pixels (about 10000 x 10000): enough for whole aerial tiles, and far
# below what makes the reader, predictor and overlay exhaust the memory of a workstation.
DEFAULT_MAX_PIXELS = 100_000_000
# Pillow's rawmodes of 16-bit PNG samples it narrows to 8 bits (big-endian, high byte kept),
# and the rawmode that unpacks the low byte of the same samples instead.
_NARROWED_PNG_RAWMODES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}


class ImageReadError(Exception):
    """An image file is missing or cannot be decoded; the message names the file."""


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than the configured limit."""


def check_pixel_limit(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    """Raise :class:`ImageTooLargeError` when ``width * height`` exceeds ``max_pixels``."""
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: {width}x{height} is {pixel_amount(width * height)}, above the limit of "
            f"{pixel_amount(max_pixels)}; use --tile (scene mode) or resize the image "
            "(or raise --max-pixels if the memory allows)"
        )


def pixel_amount(pixels: int) -> str:
    """400000000 -> '400 megapixels', 567 -> '567 pixels': never rounded to a misleading 0."""
    return (
        f"{pixels / 1e6:.0f} megapixels"
        if pixels >= 10_000_000
        else f"{pixels:,} pixel{'s' * (pixels != 1)}"
    )


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
    values = real_values(band).astype(np.float64)  # (H, W); complex: the amplitude
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


def _with_rawmode(tile: object, rawmode: str) -> object:
    if hasattr(tile, "_replace"):  # Pillow >= 11: a named tuple
        return tile._replace(args=rawmode)
    codec, extents, offset, _ = tile  # type: ignore[misc]
    return (codec, extents, offset, rawmode)


def _full_depth_png(path: Path) -> np.ndarray | None:
    """(3, H, W) uint16 bands of a 16-bit RGB(A) PNG, or None for any other file.

    Pillow keeps only the high byte of 16-bit colour samples. Decoding the file a second time
    with the little-endian rawmode makes its unpacker keep the low byte instead (the PNG
    unfiltering, done on whole 6- or 8-byte pixels, is the same), and the two give the samples.
    """
    with Image.open(path) as probe:
        tile_modes = [getattr(t, "args", None) or t[3] for t in probe.tile]
        if probe.format != "PNG" or not tile_modes:
            return None
        if any(mode not in _NARROWED_PNG_RAWMODES for mode in tile_modes):
            return None
    planes = []
    for low in (False, True):
        with Image.open(path) as image:
            if low:
                image.tile = [
                    _with_rawmode(t, _NARROWED_PNG_RAWMODES[m])
                    for t, m in zip(image.tile, tile_modes)
                ]
            image.load()
            planes.append(np.asarray(image)[..., :3].astype(np.uint16))  # (H, W, 3)
    high, low_byte = planes
    return ((high << 8) | low_byte).transpose(2, 0, 1)  # (3, H, W)


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode == "RGB":
        return np.asarray(image, dtype=np.uint8).copy()
    if image.mode in _WIDE_GRAY_MODES:
        return bands_to_rgb(np.asarray(image)[None])
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _is_geotiff(image: Image.Image) -> bool:
    tags = getattr(image, "tag_v2", None)
    return tags is not None and any(tag in tags for tag in _GEOTIFF_TAGS)


def _read_with_pil(path: Path, is_tiff: bool, max_pixels: int | None) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit
            with Image.open(path) as opened:
                check_pixel_limit(path, opened.width, opened.height, max_pixels)
                if is_tiff and _is_geotiff(opened):
                    raise GeoDependencyError(
                        f"{path}: is a GeoTIFF; keeping its CRS and transform needs rasterio; "
                        f"{GEO_INSTALL_HINT}"
                    )
                deep = None if is_tiff else _full_depth_png(path)
                if deep is not None:
                    stretched = Image.fromarray(bands_to_rgb(deep))
                    stretched.info["exif"] = opened.info.get("exif", b"")
                    opened = stretched
                image = ImageOps.exif_transpose(opened)
                image.load()
                pixels = _pil_to_rgb(image)
    except (GeoDependencyError, ImageReadError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"{path}: too many pixels to decode safely ({exc}); use --tile (scene mode) or "
            "resize the image"
        ) from exc
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... on broken files
        hint = f" (reading this TIFF may need rasterio; {GEO_INSTALL_HINT})" if is_tiff else ""
        raise ImageReadError(
            f"{path}: cannot read image ({type(exc).__name__}: {exc}){hint}"
        ) from exc
    return LoadedImage(path=path, pixels=pixels, geo=None)


def _read_with_rasterio(
    path: Path, rasterio: ModuleType, max_pixels: int | None, bands: Bands, stretch: Stretch
) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                check_pixel_limit(path, dataset.width, dataset.height, max_pixels)
                chosen = select_bands(dataset.count, bands, str(path))
                data = dataset.read(indexes=chosen)  # (3, H, W)
                valid = dataset.dataset_mask() > 0  # (H, W): nodata value, mask band, alpha
                limits = dataset_limits(dataset, chosen, stretch)
                geo = georeference_of(dataset)
    except (ImageReadError, BandsError):
        raise
    except Exception as exc:  # RasterioIOError, CPLE_* errors on broken files
        raise ImageReadError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from exc
    if data.dtype.kind in "fc":
        valid &= np.isfinite(data).all(axis=0)
    rgb = apply_stretch(data, limits)  # (3, H, W)
    rgb[:, ~valid] = 0
    return LoadedImage(path=path, pixels=np.ascontiguousarray(rgb.transpose(1, 2, 0)), geo=geo)


def dataset_limits(dataset: object, chosen: list[int], stretch: Stretch) -> list[tuple[float, ...]]:
    """The stretch limits of bands ``chosen`` of an open rasterio dataset: percentiles on the
    decimated read every reader shares (:mod:`btdnet.raster.bands`), else fixed."""
    rule = stretch.resolved([dataset.dtypes[b - 1] for b in chosen])
    if rule.kind != "percentile":
        return rule.limits(np.zeros((len(chosen), 1, 1)), np.ones((1, 1), bool))
    shape = sample_shape(dataset.height, dataset.width)
    sample = dataset.read(indexes=chosen, out_shape=(len(chosen), *shape))  # (3, h, w)
    return rule.limits(sample, dataset.dataset_mask(out_shape=shape) > 0)


def choose_pixel_bands(
    pixels: np.ndarray, bands: Bands, stretch: Stretch, path: Path
) -> np.ndarray:
    """``--bands`` and ``--stretch`` on a decoded (H, W, 3) uint8 picture (PNG, JPEG, PIL
    TIFF): bands among its three channels, the stretch over all of it."""
    if bands is not None:
        pixels = pixels[..., [b - 1 for b in select_bands(3, bands, str(path))]]
    if stretch.kind in ("auto", "none"):
        return np.ascontiguousarray(pixels)
    channels = pixels.transpose(2, 0, 1)  # (3, H, W)
    step = max(1, -(-max(pixels.shape[:2]) // STRETCH_SAMPLE_SIDE))
    sample = channels[:, ::step, ::step]
    limits = stretch.limits(sample, np.ones(sample.shape[1:], bool))
    return np.ascontiguousarray(apply_stretch(channels, limits).transpose(1, 2, 0))


def read_image(
    path: str | Path,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    bands: Bands = None,
    stretch: Stretch | None = None,
) -> LoadedImage:
    """Read a PNG, JPEG or (Geo)TIFF file as uint8 RGB plus its georeference if any.

    Args:
        path: the image file.
        max_pixels: refuse images with more pixels (None: no limit of ours).
        bands: 1-based band numbers to read as R, G, B (or one, grey); None: the first three
            (see :mod:`btdnet.raster.bands`).
        stretch: how values become 0..255 (default :class:`~btdnet.raster.bands.Stretch`
            ``auto``), the same as scene mode's for the same file.

    Raises:
        ImageReadError: the file is missing, a folder, or cannot be decoded.
        ImageTooLargeError: the image has more than ``max_pixels`` pixels.
        GeoDependencyError: the file is a GeoTIFF and rasterio is not installed.
        BandsError: ``bands`` asks for a band the file does not have.
    """
    path = Path(path)
    stretch = stretch or Stretch()
    if not path.exists():
        raise ImageReadError(f"{path}: image file not found")
    if not path.is_file():
        raise ImageReadError(f"{path}: is not a file")
    is_tiff = path.suffix.lower() in TIFF_SUFFIXES
    if is_tiff:
        try:
            rasterio = require_rasterio(f"{path}: reading a TIFF")
        except GeoDependencyError:
            rasterio = None
        if rasterio is not None:
            return _read_with_rasterio(path, rasterio, max_pixels, bands, stretch)
    loaded = _read_with_pil(path, is_tiff=is_tiff, max_pixels=max_pixels)
    if bands is not None or stretch.kind != "auto":
        loaded.pixels = choose_pixel_bands(loaded.pixels, bands, stretch, path)
    return loaded


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file as :func:`read_image` would return it, from its header
    only (no pixel is decoded; EXIF rotations by a quarter turn swap the two).

    Raises:
        ImageReadError: the file is missing or its header cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        state = "not found" if not path.exists() else "is not a file"
        raise ImageReadError(f"{path}: image file {state}")
    if path.suffix.lower() in TIFF_SUFFIXES:
        try:
            rasterio = require_rasterio(f"{path}: reading a TIFF")
        except GeoDependencyError:
            rasterio = None
        if rasterio is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                    with rasterio.open(path) as dataset:
                        return int(dataset.height), int(dataset.width)
            except Exception as exc:  # RasterioIOError, CPLE_* errors on broken files
                raise ImageReadError(f"{path}: cannot read image ({type(exc).__name__})") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height = opened.size
                orientation = opened.getexif().get(0x0112, 1)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"{path}: too many pixels to decode safely ({exc}); resize the image"
        ) from exc
    except Exception as exc:  # PIL raises OSError, SyntaxError, ... on broken files
        raise ImageReadError(f"{path}: cannot read image ({type(exc).__name__})") from exc
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def write_mask_png(path: str | Path, mask: np.ndarray) -> Path:
    """Write a bool (H, W) mask as an 8-bit grey PNG with values 0 and 255. Returns the path."""
    path = Path(path)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return path
