"""Stream the row parts of a scene into its output files, in bounded memory.

- ``<name>.tif``: the mask (uint8 0/255), a Cloud-Optimized GeoTIFF (512-pixel tiles,
  DEFLATE, nearest-neighbour overviews) with the scene's CRS and transform;
- ``<name>_probability.tif`` (optional): the blended probability x 255 as uint8, same layout,
  averaged overviews;
- in both rasters the scene's nodata pixels (never looked at) are nodata: GDAL's per-dataset
  mask, stored inside the file (0 = nodata, 255 = valid), so a GIS tells "not looked at" from
  "not the target" while the values stay 0/255 and 0-255 (nodata pixels hold 0);
- ``<name>.geojson`` and ``<name>.gpkg`` (layer ``objects``): one polygon per 4-connected
  object with ``score`` (mean probability over its pixels), ``area`` (map units, squared
  pixels without a georeference) and ``area_pixels``, simplified and filtered by
  :class:`~btdnet.predict.vectors.VectorOptions`; the GeoJSON is RFC 7946 (WGS 84) by
  default, the GeoPackage keeps the scene's CRS.

The rows are first written, strip by strip, into tiled GeoTIFFs in the parts folder; GDAL's
COG driver then copies them with overviews, and GDAL's polygonizer reads the mask line by
line. Each polygon's score and pixel count come from :mod:`~btdnet.predict.scene.objects`
(one labelling pass over the mask and probability, strip by strip), not from rasterizing it
again. GeoPackage output uses fiona (GDAL/OGR's vector side, maintained with rasterio).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from btdnet.predict.scene.objects import ObjectTable
from btdnet.predict.scene.rows import RowPart, to_uint8_probability
from btdnet.predict.vectors import GeoJsonFrame, VectorOptions, polish
from btdnet.raster.geo import GeoReference, require_rasterio
from btdnet.safe_write import check_output_path
from btdnet.tiling import RowSplit, TileGrid, stitch

BLOCK = 512
GPKG_LAYER = "objects"


@contextmanager
def quiet_georeference() -> Iterator[None]:
    """Silence rasterio's NotGeoreferencedWarning on our own files (the runner warned once)."""
    rasterio = require_rasterio("scene outputs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        yield


@dataclass
class SceneTotals:
    """What the assembly counted over the whole scene."""

    tiles: int = 0
    tiles_nodata: int = 0
    tiles_absent: int = 0
    area_pixels: int = 0


def _profile(rasterio: Any, grid: TileGrid, geo: GeoReference | None) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": grid.height,
        "width": grid.width,
        "count": 1,
        "dtype": "uint8",
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    if geo is not None:
        profile["transform"] = rasterio.Affine(*geo.transform)
        if geo.crs_wkt:
            profile["crs"] = rasterio.crs.CRS.from_wkt(geo.crs_wkt)
    return profile


def _strips(
    parts_dir: Path, grid: TileGrid
) -> Iterator[tuple[int, np.ndarray, np.ndarray, RowPart]]:
    """(first row, bool mask (h, W), uint8 probability (h, W), part) strips in scene order."""
    splits = (
        RowSplit(part.index, part.top, part, part.bottom)
        for part in (RowPart.load(parts_dir, index, grid) for index in range(grid.rows.count))
    )
    part = None
    for start, strip, shared in stitch(grid.rows, splits):
        if shared:  # (O, W) blended probability of the band two rows share
            yield start, strip > 0.5, to_uint8_probability(strip), part
        else:
            part = strip
            yield start, part.core_mask, part.core_probability, part


def write_rasters(
    parts_dir: Path,
    grid: TileGrid,
    geo: GeoReference | None,
    valid_rows: Callable[[int, int], np.ndarray] | None = None,
) -> tuple[Path, Path, SceneTotals]:
    """Stream the parts into tiled ``mask.tif`` and ``probability.tif`` in ``parts_dir``.

    ``valid_rows(y, h)``: bool (h, W) valid pixels of those scene rows; where it is False both
    rasters get nodata (an internal per-dataset mask). None: every pixel is valid (no mask).
    """
    rasterio = require_rasterio("writing the scene mask")
    from rasterio.windows import Window

    totals = SceneTotals()
    mask_path = check_output_path(parts_dir / "mask.tif")  # never written through a link
    probability_path = check_output_path(parts_dir / "probability.tif")
    profile = _profile(rasterio, grid, geo)
    counted: set[int] = set()
    with (
        quiet_georeference(),
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),  # the nodata mask inside the file
        rasterio.open(mask_path, "w", **profile) as mask_out,
        rasterio.open(probability_path, "w", **profile) as probability_out,
    ):
        for start, mask, probability, part in _strips(parts_dir, grid):
            if part.index not in counted:
                counted.add(part.index)
                totals.tiles += part.tiles
                totals.tiles_nodata += part.nodata
                totals.tiles_absent += part.absent
            if mask.shape[0] == 0:
                continue
            window = Window(0, start, grid.width, mask.shape[0])
            mask_out.write(mask.astype(np.uint8) * 255, 1, window=window)
            probability_out.write(probability, 1, window=window)
            if valid_rows is not None:
                valid = valid_rows(start, mask.shape[0]).astype(np.uint8) * 255  # (h, W)
                mask_out.write_mask(valid, window=window)
                probability_out.write_mask(valid, window=window)
            totals.area_pixels += int(mask.sum())
    return mask_path, probability_path, totals


def to_cog(source: Path, target: Path, resampling: str) -> Path:
    """Copy a tiled GeoTIFF to a Cloud-Optimized GeoTIFF with overviews.

    ``target`` is a fresh temporary (:func:`btdnet.safe_write.atomic_outputs`): the previous
    output is replaced only when the whole set of outputs is written.
    """
    rasterio = require_rasterio("writing a Cloud-Optimized GeoTIFF")
    from rasterio.shutil import copy

    check_output_path(target)
    with quiet_georeference(), rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        copy(
            str(source),
            str(target),
            driver="COG",
            COMPRESS="DEFLATE",
            BLOCKSIZE=str(BLOCK),
            OVERVIEW_RESAMPLING=resampling,
            BIGTIFF="IF_SAFER",
        )
    return target


def pixel_area(geo: GeoReference | None) -> float:
    """Area of one pixel in map units (1 without a georeference)."""
    if geo is None:
        return 1.0
    a, b, _, d, e, _ = geo.transform
    return abs(a * e - b * d)


def iter_objects(
    mask_path: Path, probability_path: Path, geo: GeoReference | None
) -> Iterator[dict[str, Any]]:
    """GeoJSON features of the mask's 4-connected objects with score and area."""
    rasterio = require_rasterio("polygons of the scene mask")
    from rasterio.features import shapes as polygonize

    unit = pixel_area(geo)
    with quiet_georeference():
        table = ObjectTable.from_files(mask_path, probability_path)
    with quiet_georeference(), rasterio.open(mask_path) as mask:
        band = rasterio.band(mask, 1)
        inverse = ~mask.transform
        shapes = polygonize(band, mask=band, connectivity=4, transform=mask.transform)
        for number, (geometry, _value) in enumerate(shapes, start=1):
            score, pixels = table.for_polygon(geometry, inverse)
            properties = {
                "id": number,
                "score": round(score, 4),
                "area": pixels * unit,
                "area_pixels": pixels,
                **pixel_box(geometry, inverse),
            }
            yield {"type": "Feature", "geometry": geometry, "properties": properties}


def pixel_box(geometry: dict[str, Any], inverse: Any) -> dict[str, int]:
    """The object's box in scene pixels from its polygon's exterior ring: ``bbox_x1``,
    ``bbox_y1`` (first column and row) and ``bbox_x2``, ``bbox_y2`` (exclusive)."""
    ring = np.asarray(geometry["coordinates"][0], dtype=np.float64)  # (V, 2) x, y
    a, b, c, d, e, f = inverse[:6]
    columns = np.rint(a * ring[:, 0] + b * ring[:, 1] + c).astype(np.int64)  # (V,)
    rows = np.rint(d * ring[:, 0] + e * ring[:, 1] + f).astype(np.int64)  # (V,)
    return {
        "bbox_x1": int(columns.min()),
        "bbox_y1": int(rows.min()),
        "bbox_x2": int(columns.max()),
        "bbox_y2": int(rows.max()),
    }


def write_vectors(
    features: Iterator[dict[str, Any]],
    geojson_path: Path,
    gpkg_path: Path,
    geo: GeoReference | None,
    text: str,
    options: VectorOptions | None = None,
) -> tuple[int, int]:
    """Write features one by one to GeoJSON (WGS 84 unless ``options`` say native) and
    GeoPackage (the scene's CRS), simplified and filtered by ``options``; returns how many
    were written and how many were below the minimum area.

    Both paths are fresh temporaries (:func:`btdnet.safe_write.atomic_outputs`).
    """
    import fiona

    options = options or VectorOptions()
    frame = GeoJsonFrame(geo, options)
    schema = {
        "geometry": "Polygon",
        "properties": {
            "id": "int",
            "text": "str",
            "score": "float",
            "area": "float",
            "area_pixels": "int",
            "bbox_x1": "int",
            "bbox_y1": "int",
            "bbox_x2": "int",
            "bbox_y2": "int",
        },
    }
    crs = fiona.crs.CRS.from_wkt(geo.crs_wkt) if geo is not None and geo.crs_wkt else None
    check_output_path(geojson_path)
    check_output_path(gpkg_path)
    count = small = 0
    with (
        geojson_path.open("w", encoding="utf-8") as stream,
        fiona.open(
            gpkg_path, "w", driver="GPKG", schema=schema, crs=crs, layer=GPKG_LAYER
        ) as layer,
    ):
        stream.write(json.dumps(frame.header())[:-1] + ', "features": [\n')
        for feature in features:
            geometry = polish(feature["geometry"], options)
            if geometry is None:
                small += 1
                continue
            count += 1
            properties = {"text": text, **feature["properties"], "id": count}
            native = {"type": "Feature", "geometry": geometry, "properties": properties}
            layer.write(native)
            framed = {**native, "geometry": frame.geometry(geometry)}
            stream.write((",\n" if count > 1 else "") + json.dumps(framed))
        stream.write("\n]}\n")
    return count, small
