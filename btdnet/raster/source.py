"""Read a scene window by window as 8-bit RGB plus a valid-pixel mask.

- GeoTIFF / COG / any TIFF: opened with rasterio and read one window at a time (GDAL's block
  cache is bounded by ``GDAL_CACHEMAX``, set by the scene runner), so memory does not grow with
  the scene. Bands and stretch follow :mod:`btdnet.raster.bands`, exactly as a whole-image
  read of the same file: the first three bands unless ``bands`` says which, 8-bit used as is
  and other types stretched per band between their 2nd and 98th percentiles unless
  ``stretch`` says otherwise. Percentiles are computed once per scene on a decimated read (at
  most :data:`~btdnet.raster.bands.STRETCH_SAMPLE_SIDE` pixels a side), so every window
  shares one stretch.
- Other formats (PNG, JPEG): decoded whole with PIL (within PIL's pixel limit), then windowed.
- Nodata: a pixel is invalid when GDAL's dataset mask says so (nodata value, mask band or
  alpha) or when any of its bands is NaN/inf. Invalid pixels read as 0 and are never predicted
  as target.
- ``gsd``: the scene is read resampled (bilinear) to that many CRS units per pixel; the
  returned georeference is that of the resampled grid.
- Windows reaching past the scene are padded by reflection (the valid mask is False there).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from btdnet.raster.bands import Stretch, apply_stretch, select_bands
from btdnet.raster.geo import GeoReference, georeference_of, require_rasterio
from btdnet.raster.image_io import TIFF_SUFFIXES, ImageReadError, dataset_limits, read_image


class SceneReadError(ImageReadError):
    """A scene cannot be opened or read, or an option does not fit it; names the file."""


class NotGeoreferencedWarning(UserWarning):
    """The scene has no georeference: outputs are in pixel coordinates."""


def _pad_to(array: np.ndarray, height: int, width: int, fill: Any = "reflect") -> np.ndarray:
    """Pad the first two axes of ``array`` at the bottom/right to (height, width)."""
    pad_y, pad_x = height - array.shape[0], width - array.shape[1]
    if pad_y == 0 and pad_x == 0:
        return array
    widths = [(0, pad_y), (0, pad_x)] + [(0, 0)] * (array.ndim - 2)
    if fill == "reflect" and min(array.shape[:2]) > 1:
        return np.pad(array, widths, mode="reflect")
    if fill == "reflect":
        return np.pad(array, widths, mode="edge")
    return np.pad(array, widths, mode="constant", constant_values=fill)


class SceneSource:
    """One scene opened for windowed reading; use as a context manager.

    Args:
        path: the image file.
        gsd: resample to this ground sampling distance (CRS units per pixel); needs a
            georeferenced, north-up scene.
        bands: 1-based band numbers read as R, G, B (or one, grey); None: the first three.
        stretch: how values become 0..255 (:mod:`btdnet.raster.bands`; default ``auto``),
            the same limits for every window, and the same as a whole-image read's.

    Attributes:
        height, width: size of the (possibly resampled) scene in pixels.
        geo: its georeference, ``None`` when the file has none.
        source_gsd: CRS units per source pixel, ``None`` when not georeferenced.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        gsd: float | None = None,
        bands: tuple[int, ...] | None = None,
        stretch: Stretch | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            state = "not found" if not self.path.exists() else "is not a file"
            raise SceneReadError(f"{self.path}: image file {state}")
        self._dataset: Any = None
        self._pixels: np.ndarray | None = None  # (H, W, 3) uint8 for PIL-read images
        self._limits: list[tuple[float, float]] | None = None
        self._stretch = False  # its limits are sampled on the first read, never for a
        # scene refused for its size
        self._bands: list[int] = []
        self._band_choice, self._stretch_rule = bands, stretch or Stretch()
        self._scale = (1.0, 1.0)  # source pixels per scene pixel along (y, x)
        if self.path.suffix.lower() in TIFF_SUFFIXES:
            self._open_rasterio()
        else:
            loaded = read_image(self.path, bands=bands, stretch=self._stretch_rule)
            self._pixels = loaded.pixels
            self.geo: GeoReference | None = None
            self.height, self.width = loaded.height, loaded.width
        self.source_gsd = self._source_gsd()
        if gsd is not None:
            self._resample_to(gsd)

    def _open_rasterio(self) -> None:
        rasterio = require_rasterio(f"{self.path}: reading a scene")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self._dataset = rasterio.open(self.path)
            dataset = self._dataset
            self.geo = georeference_of(dataset)
            self.height, self.width = dataset.height, dataset.width
            self._bands = select_bands(dataset.count, self._band_choice, str(self.path))
            self._stretch = True
        except (ImageReadError, ValueError):  # BandsError: a band the file does not have
            self.close()
            raise
        except Exception as exc:  # RasterioIOError, CPLE_* errors on broken files
            self.close()
            raise SceneReadError(
                f"{self.path}: cannot read image ({type(exc).__name__}: {exc})"
            ) from exc

    def _compute_limits(self) -> list[tuple[float, float]]:
        return dataset_limits(self._dataset, self._bands, self._stretch_rule)

    def _source_gsd(self) -> float | None:
        if self.geo is None:
            return None
        a, b, _, d, e, _ = self.geo.transform
        return math.sqrt(abs(a * e - b * d))

    def _resample_to(self, gsd: float) -> None:
        if not math.isfinite(gsd) or gsd <= 0:
            raise SceneReadError(f"{self.path}: --gsd must be a positive number, got {gsd}")
        if self.geo is None or self._dataset is None:
            raise SceneReadError(f"{self.path}: --gsd needs a georeferenced GeoTIFF")
        a, b, c, d, e, f = self.geo.transform
        if b != 0 or d != 0:
            raise SceneReadError(f"{self.path}: --gsd needs a north-up (unrotated) transform")
        height = max(1, round(self.height * abs(e) / gsd))
        width = max(1, round(self.width * abs(a) / gsd))
        self._scale = (self.height / height, self.width / width)
        sy, sx = self._scale
        transform = (a * sx, 0.0, c, 0.0, e * sy, f)
        self.geo = GeoReference(self.geo.crs_wkt, transform, self.geo.epsg)
        self.height, self.width = height, width

    def read(self, y: int, x: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``size x size`` window at (y, x): uint8 (size, size, 3) RGB and bool (size, size)
        valid mask; parts outside the scene are reflected and marked invalid."""
        height = min(size, self.height - y)
        width = min(size, self.width - x)
        if self._pixels is not None:
            rgb = self._pixels[y : y + height, x : x + width]  # (h, w, 3)
            valid = np.ones((height, width), dtype=bool)
        else:
            rgb, valid = self._read_window(y, x, height, width)
        return _pad_to(rgb, size, size), _pad_to(valid, size, size, fill=False)

    def valid_rows(self, y: int, height: int) -> np.ndarray:
        """Bool (height, W) valid mask of the scene rows ``y .. y + height`` (the nodata of the
        output rasters): GDAL's dataset mask and finite bands; PIL-read images are all valid."""
        if self._pixels is not None:
            return np.ones((height, self.width), dtype=bool)
        return self._read_window(y, 0, height, self.width)[1]

    def _read_window(self, y: int, x: int, height: int, width: int) -> tuple[np.ndarray, ...]:
        from rasterio.enums import Resampling
        from rasterio.windows import Window

        sy, sx = self._scale
        window = Window(x * sx, y * sy, width * sx, height * sy)
        options = {"window": window, "out_shape": (3, height, width)}
        if self._scale != (1.0, 1.0):
            options["resampling"] = Resampling.bilinear
        try:
            if self._stretch and self._limits is None:
                self._limits = self._compute_limits()  # once per scene, on the first window
            bands = self._dataset.read(indexes=self._bands, **options)  # (3, h, w)
            mask = self._dataset.dataset_mask(window=window, out_shape=(height, width))
        except Exception as exc:
            raise SceneReadError(
                f"{self.path}: cannot read window at row {y}, column {x} "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        valid = mask > 0  # (h, w)
        if bands.dtype.kind in "fc":
            valid &= np.isfinite(bands).all(axis=0)
        rgb = apply_stretch(bands, self._limits).transpose(1, 2, 0)  # (h, w, 3)
        rgb = np.where(valid[:, :, None], rgb, 0).astype(np.uint8)
        return np.ascontiguousarray(rgb), valid

    def overview(self, max_side: int) -> np.ndarray:
        """The whole scene as uint8 (h, w, 3) RGB, its longer side at most ``max_side`` pixels
        (never enlarged), with the same bands and stretch as :meth:`read`; nodata reads 0."""
        factor = max(1.0, max(self.height, self.width) / max_side)
        height = max(1, round(self.height / factor))
        width = max(1, round(self.width / factor))
        if self._pixels is not None:
            from PIL import Image

            picture = Image.fromarray(self._pixels)
            if (height, width) != self._pixels.shape[:2]:
                picture = picture.resize((width, height), Image.Resampling.BILINEAR)
            return np.asarray(picture, dtype=np.uint8)
        from rasterio.enums import Resampling

        shape = (height, width)
        if self._limits is None:
            self._limits = self._compute_limits()
        bands = self._dataset.read(
            indexes=self._bands, out_shape=(3, *shape), resampling=Resampling.average
        )  # (3, h, w)
        valid = self._dataset.dataset_mask(out_shape=shape) > 0  # (h, w)
        if bands.dtype.kind in "fc":
            valid &= np.isfinite(bands).all(axis=0)
        rgb = apply_stretch(bands, self._limits).transpose(1, 2, 0)  # (h, w, 3)
        return np.ascontiguousarray(np.where(valid[:, :, None], rgb, 0).astype(np.uint8))

    def close(self) -> None:
        """Close the file (rasterio scenes)."""
        if self._dataset is not None:
            self._dataset.close()
            self._dataset = None

    def __enter__(self) -> SceneSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
