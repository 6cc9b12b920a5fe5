"""Georeferenced outputs: where an image lies on the ground, and its GeoTIFF mask.

``rasterio`` is an optional extra (``pip install btdnet[geo]``). It is imported only when a
georeferenced image is read or written; without it :func:`require_rasterio` raises
:class:`GeoDependencyError` whose message says how to install it.

Polygons (GeoJSON in WGS 84, simplification, minimum area) are made by
:mod:`btdnet.predict.vectors`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

GEO_INSTALL_HINT = "install it with `pip install btdnet[geo]`"


class GeoDependencyError(ImportError):
    """rasterio is needed for a georeferenced image and is not installed."""


def require_rasterio(purpose: str) -> ModuleType:
    """Import and return ``rasterio``; ``purpose`` says what needs it in the error message."""
    try:
        import rasterio
        import rasterio.features  # submodule used by the polygon writers
    except ImportError as exc:
        raise GeoDependencyError(
            f"{purpose} needs the optional dependency rasterio; {GEO_INSTALL_HINT}"
        ) from exc
    return rasterio


@dataclass(frozen=True)
class GeoReference:
    """Where an image lies on the ground.

    Attributes:
        crs_wkt: the coordinate reference system as WKT ("" when the file has none).
        transform: the affine pixel-to-CRS transform as the six numbers ``(a, b, c, d, e, f)``
            of ``x = a*col + b*row + c``, ``y = d*col + e*row + f`` (rasterio's ``Affine`` order).
        epsg: the EPSG code of the CRS when one is known, else ``None``.
    """

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    epsg: int | None = None

    def bounds(self, height: int, width: int) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) in CRS units of an image of ``height`` x ``width``."""
        a, b, c, d, e, f = self.transform
        corners = [(0, 0), (width, 0), (0, height), (width, height)]
        xs = [a * col + b * row + c for col, row in corners]
        ys = [d * col + e * row + f for col, row in corners]
        return min(xs), min(ys), max(xs), max(ys)


def georeference_of(dataset: Any) -> GeoReference | None:
    """The :class:`GeoReference` of an open rasterio dataset, ``None`` when not georeferenced."""
    crs = dataset.crs
    transform = dataset.transform
    if crs is None and transform.is_identity:
        return None
    epsg = crs.to_epsg() if crs is not None else None
    return GeoReference(
        crs_wkt=crs.to_wkt() if crs is not None else "",
        transform=tuple(float(v) for v in transform[:6]),
        epsg=epsg,
    )


def _affine(rasterio: ModuleType, geo: GeoReference) -> Any:
    return rasterio.Affine(*geo.transform)


def write_mask_geotiff(path: str | Path, mask: np.ndarray, geo: GeoReference) -> Path:
    """Write a bool (H, W) mask as a single-band uint8 GeoTIFF (0/255) with ``geo``'s CRS and
    transform, LZW-compressed. Returns the path."""
    rasterio = require_rasterio(f"{path}: writing a GeoTIFF mask")
    path = Path(path)
    height, width = mask.shape
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": 1,
        "dtype": "uint8",
        "transform": _affine(rasterio, geo),
        "compress": "lzw",
    }
    if geo.crs_wkt:
        profile["crs"] = rasterio.crs.CRS.from_wkt(geo.crs_wkt)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mask.astype(np.uint8) * 255, 1)
    return path


def write_geojson(path: str | Path, collection: dict[str, Any]) -> Path:
    """Write a GeoJSON mapping to ``path`` (UTF-8). Returns the path."""
    path = Path(path)
    path.write_text(json.dumps(collection), encoding="utf-8")
    return path
