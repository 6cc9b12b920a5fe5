"""Polygons as GIS users expect them: simplified, small ones dropped, GeoJSON in WGS 84.

- ``--simplify TOLERANCE`` (map units; pixels without a georeference): Douglas-Peucker with
  topology kept (shapely's ``simplify(preserve_topology=True)``: a ring never crosses itself
  or its holes and no polygon collapses), so a polygon traced along pixel edges keeps its
  shape with few vertices.
- ``--min-area AREA`` (map units squared; pixels without a georeference): polygons of a
  smaller area (holes subtracted, measured before simplification) are not written. The mask
  raster is unchanged: it stays the model's answer pixel by pixel.
- GeoJSON follows RFC 7946 by default: coordinates are WGS 84 longitude/latitude (GDAL's
  transformation, ``rasterio.warp.transform_geom``, rings cut at the antimeridian) and there
  is no ``crs`` member. ``--geojson-crs native`` keeps the image's CRS instead, with the
  pre-RFC ``crs`` member (``urn:ogc:def:crs:EPSG::<code>``, or the WKT) that GDAL, QGIS and
  geopandas read; so does a CRS with no transformation to WGS 84 (a local grid). The
  GeoPackage (scene mode) is always in the image's own CRS.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np

from btdnet.raster.geo import GEO_INSTALL_HINT, GeoReference, require_rasterio

GEOJSON_CRS = ("wgs84", "native")
WGS84 = "EPSG:4326"


@dataclass(frozen=True)
class VectorOptions:
    """How polygons are written (see the module docstring).

    Attributes:
        simplify: Douglas-Peucker tolerance in map units (0: the pixel edges as traced).
        min_area: smallest polygon area kept, map units squared (0: keep all).
        geojson_crs: "wgs84" (RFC 7946) or "native" (the image's CRS and a ``crs`` member).
    """

    simplify: float = 0.0
    min_area: float = 0.0
    geojson_crs: str = "wgs84"

    def __post_init__(self) -> None:
        if not self.simplify >= 0:
            raise ValueError(f"--simplify must be >= 0 (map units), got {self.simplify}")
        if not self.min_area >= 0:
            raise ValueError(f"--min-area must be >= 0 (map units squared), got {self.min_area}")
        if self.geojson_crs not in GEOJSON_CRS:
            raise ValueError(f"--geojson-crs must be one of {GEOJSON_CRS}, got {self.geojson_crs}")


def polish(geometry: dict[str, Any], options: VectorOptions) -> dict[str, Any] | None:
    """A GeoJSON polygon simplified by ``options``; None when below ``min_area``."""
    if not options.simplify and not options.min_area:
        return geometry
    try:
        from shapely.geometry import mapping, shape
    except ImportError as exc:
        raise ImportError(
            f"--simplify and --min-area need the optional dependency shapely; {GEO_INSTALL_HINT}"
        ) from exc
    polygon = shape(geometry)
    if polygon.area < options.min_area:
        return None
    if options.simplify:
        polygon = polygon.simplify(options.simplify, preserve_topology=True)
    return mapping(polygon)


def crs_member(geo: GeoReference) -> dict[str, Any] | None:
    """The pre-RFC GeoJSON ``crs`` member naming ``geo``'s CRS (None without a CRS)."""
    if geo.epsg is not None:
        return {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{geo.epsg}"}}
    if geo.crs_wkt:
        return {"type": "name", "properties": {"name": geo.crs_wkt}}
    return None


class GeoJsonFrame:
    """The coordinates GeoJSON is written in for an image georeferenced by ``geo``.

    WGS 84 when asked and the image's CRS can be transformed to it; otherwise the image's
    own coordinates (map units, or pixels when ``geo`` is None).
    """

    def __init__(self, geo: GeoReference | None, options: VectorOptions) -> None:
        self.geo = geo
        self.wgs84 = False
        if geo is not None and geo.crs_wkt and options.geojson_crs == "wgs84":
            self.wgs84 = self._transformable(geo)

    @staticmethod
    def _transformable(geo: GeoReference) -> bool:
        require_rasterio("GeoJSON in WGS 84")
        from rasterio.warp import transform

        x, y = geo.transform[2], geo.transform[5]
        try:
            lon, lat = transform(geo.crs_wkt, WGS84, [x], [y])
        except Exception:  # CRSError, a local grid with no datum: no way to WGS 84
            return False
        return bool(np.isfinite(lon[0]) and np.isfinite(lat[0]))

    def header(self) -> dict[str, Any]:
        """The FeatureCollection's members other than ``features``."""
        collection: dict[str, Any] = {"type": "FeatureCollection"}
        if self.geo is not None and not self.wgs84:
            member = crs_member(self.geo)
            if member is not None:
                collection["crs"] = member
        return collection

    def geometry(self, geometry: dict[str, Any]) -> dict[str, Any]:
        """A geometry in the image's CRS -> in this frame."""
        if not self.wgs84:
            return geometry
        from rasterio.warp import transform_geom

        return transform_geom(self.geo.crs_wkt, WGS84, geometry)


def mask_to_geojson(
    mask: np.ndarray,
    geo: GeoReference,
    properties: dict[str, Any] | None = None,
    options: VectorOptions | None = None,
) -> dict[str, Any]:
    """Polygons of the True pixels of a bool (H, W) mask as a GeoJSON FeatureCollection.

    Each 4-connected region gives one Polygon feature (holes kept as inner rings) traced along
    pixel edges in ``geo``'s CRS, then simplified, filtered and framed by ``options`` (default:
    WGS 84 when the CRS allows it, nothing simplified or dropped). ``properties`` is copied
    into every feature. An empty mask gives no features.
    """
    rasterio = require_rasterio("GeoJSON polygons")
    options = options or VectorOptions()
    frame = GeoJsonFrame(geo, options)
    features = []
    shapes = rasterio.features.shapes(
        mask.astype(np.uint8), mask=mask.astype(bool), transform=rasterio.Affine(*geo.transform)
    )
    for geometry, _value in shapes:
        kept = polish(geometry, options)
        if kept is not None:
            feature = {"type": "Feature", "geometry": frame.geometry(kept)}
            features.append({**feature, "properties": dict(properties or {})})
    return {**frame.header(), "features": features}


def add_vector_arguments(parser: argparse.ArgumentParser) -> None:
    """``--simplify``, ``--min-area`` and ``--geojson-crs`` (polygon outputs)."""
    group = parser.add_argument_group(
        "polygons (GeoJSON, GeoPackage)",
        "GeoJSON is RFC 7946 (WGS 84 longitude/latitude, no crs member) when the image has a "
        "CRS; the GeoPackage keeps the image's CRS. The mask raster is never changed.",
    )
    group.add_argument(
        "--simplify",
        type=float,
        default=0.0,
        metavar="TOLERANCE",
        help="simplify polygons (Douglas-Peucker, topology kept) with this tolerance in map "
        "units (pixels without a georeference); default 0: pixel edges as traced",
    )
    group.add_argument(
        "--min-area",
        type=float,
        default=0.0,
        metavar="AREA",
        help="drop polygons smaller than AREA map units squared (pixels without a "
        "georeference); default 0: keep all",
    )
    group.add_argument(
        "--geojson-crs",
        choices=GEOJSON_CRS,
        default="wgs84",
        help="wgs84 (RFC 7946, default) or native: the image's CRS with a legacy crs member",
    )


def vector_options(args: argparse.Namespace) -> VectorOptions:
    """The :class:`VectorOptions` of parsed arguments (ValueError for a negative number)."""
    return VectorOptions(args.simplify, args.min_area, args.geojson_crs)
