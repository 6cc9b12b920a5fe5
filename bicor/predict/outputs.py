"""The files ``bicor-predict`` writes for one image, each written whole or not at all.

In the output folder, with ``<stem>`` the image's file stem:

- ``<stem>_classes.tif`` (TIFF/GeoTIFF input): uint8 class ids, 255 = no data (also the
  file's nodata value), with the input's CRS and transform, the palette as the band's colour
  table and the class names as tags ``class_<id>``; tiled, DEFLATE, written strip by strip;
- ``<stem>_classes.png`` (other input): an indexed PNG whose stored values are the class ids
  and whose palette shows them in the class colours;
- ``<stem>_overlay.png``: the image with the class colours and a legend (:mod:`.overlay`);
- ``<stem>_areas.json``: per class its id, name, colour, pixels, share of the valid pixels and,
  when the image is georeferenced in a projected CRS, its area in m^2.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bicor.data.palettes import Palette
from bicor.predict.overlay import Thumbnail, render_class_overlay
from bicor.predict.scene import NODATA, SegmentOptions, SegmentResult, segment_image, tile_grid
from btdnet.raster.geo import GeoReference, require_rasterio
from btdnet.raster.image_io import TIFF_SUFFIXES
from btdnet.raster.source import SceneSource
from btdnet.safe_write import atomic_outputs

BLOCK = 256
GDAL_CACHE_MB = 64  # GDAL's block cache (default 5 % of RAM) held to this while writing


def _tiff_profile(source: SceneSource) -> dict[str, Any]:
    rasterio = require_rasterio(f"{source.path}: writing the class map")
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": source.height,
        "width": source.width,
        "count": 1,
        "dtype": "uint8",
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    if source.geo is not None:
        profile["transform"] = rasterio.Affine(*source.geo.transform)
        if source.geo.crs_wkt:
            profile["crs"] = rasterio.crs.CRS.from_wkt(source.geo.crs_wkt)
    return profile


def _segment_to_tiff(
    path: Path, model: Any, source: SceneSource, palette: Palette, options: SegmentOptions
) -> tuple[SegmentResult, Thumbnail]:
    rasterio = require_rasterio(f"{source.path}: writing the class map")
    from rasterio.windows import Window

    thumbnail = Thumbnail(source.height, source.width)

    with warnings.catch_warnings(), rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **_tiff_profile(source)) as target:

            def sink(start: int, ids: np.ndarray, rgb: np.ndarray) -> None:
                target.write(ids, 1, window=Window(0, start, source.width, ids.shape[0]))
                thumbnail.add(start, ids, rgb)

            result = segment_image(model, source, sink, options)
            target.write_colormap(1, {i: (*c, 255) for i, c in enumerate(palette.colours)})
            target.update_tags(**{f"class_{i}": n for i, n in enumerate(palette.class_names)})
            target.set_band_description(1, "class id (255: no data)")
    return result, thumbnail


def _segment_to_png(
    path: Path, model: Any, source: SceneSource, palette: Palette, options: SegmentOptions
) -> tuple[SegmentResult, Thumbnail]:
    thumbnail = Thumbnail(source.height, source.width)
    ids_map = np.full((source.height, source.width), NODATA, dtype=np.uint8)

    def sink(start: int, ids: np.ndarray, rgb: np.ndarray) -> None:
        ids_map[start : start + ids.shape[0]] = ids
        thumbnail.add(start, ids, rgb)

    result = segment_image(model, source, sink, options)
    image = Image.fromarray(ids_map)  # "L"; putpalette makes it "P" with the ids as indices
    image.putpalette(palette.lookup_table().ravel().tolist())
    image.save(path, format="PNG")
    return result, thumbnail


@contextmanager
def _tile_bar(
    source: SceneSource, model: Any, options: SegmentOptions, show: bool
) -> Iterator[Callable[[int], None] | None]:
    """A tqdm bar counting tiles (None when not shown)."""
    if not show:
        yield options.on_tiles
        return
    from tqdm import tqdm

    total = tile_grid(model, source, options).count
    with tqdm(total=total, unit="tile", desc=source.path.name, file=sys.stderr) as bar:
        yield bar.update


def metric_pixel_area(geo: GeoReference | None) -> float | None:
    """m^2 of one pixel in a projected CRS (its linear unit converted); None otherwise."""
    if geo is None or not geo.crs_wkt:
        return None
    rasterio = require_rasterio("pixel areas")
    crs = rasterio.crs.CRS.from_wkt(geo.crs_wkt)
    if not crs.is_projected:
        return None
    _, metres = crs.linear_units_factor  # e.g. ("metre", 1.0), ("US survey foot", 0.3048...)
    a, b, _, d, e, _ = geo.transform
    return abs(a * e - b * d) * metres**2


def class_areas(counts: np.ndarray, palette: Palette, geo: GeoReference | None) -> dict[str, Any]:
    """The JSON of per-class areas from the (256,) pixel counts of a class map."""
    pixel_m2 = metric_pixel_area(geo)
    valid = int(counts[: palette.num_classes].sum())
    classes = []
    for index, (name, colour) in enumerate(zip(palette.class_names, palette.colours)):
        pixels = int(counts[index])
        entry: dict[str, Any] = {
            "id": index,
            "name": name,
            "colour": "#{:02x}{:02x}{:02x}".format(*colour),
            "pixels": pixels,
            "fraction": round(pixels / valid, 6) if valid else 0.0,
        }
        if pixel_m2 is not None:
            entry["area_m2"] = pixels * pixel_m2
        classes.append(entry)
    return {
        "classes": classes,
        "pixels": valid,
        "pixels_nodata": int(counts[NODATA]),
        "pixel_area_m2": pixel_m2,
        "crs_epsg": geo.epsg if geo is not None else None,
    }


def write_outputs(
    model: Any,
    source: SceneSource,
    out_dir: Path,
    palette: Palette,
    options: SegmentOptions,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Segment ``source`` and write its four files; returns the JSON record of the run.
    ``progress``: a bar of the tiles on stderr."""
    stem = source.path.stem
    tiff = source.path.suffix.lower() in TIFF_SUFFIXES
    class_path = out_dir / f"{stem}_classes{'.tif' if tiff else '.png'}"
    overlay_path = out_dir / f"{stem}_overlay.png"
    areas_path = out_dir / f"{stem}_areas.json"
    writer = _segment_to_tiff if tiff else _segment_to_png
    # The three files replace the previous ones together, only when all are written; a link
    # at any of their names is refused before any tile runs.
    with atomic_outputs([class_path, overlay_path, areas_path]) as (classes, picture, table):
        with _tile_bar(source, model, options, progress) as bar:
            result, thumbnail = writer(
                classes, model, source, palette, replace(options, on_tiles=bar)
            )
        ids, rgb = thumbnail.arrays()
        overlay = render_class_overlay(rgb, ids, palette, result.counts, source.path.name)
        overlay.save(picture, format="PNG")
        areas = class_areas(result.counts, palette, source.geo)
        table.write_text(json.dumps(areas, indent=1), encoding="utf-8")
    grid = result.grid
    return {
        "image": str(source.path),
        "height": grid.height,
        "width": grid.width,
        "tile": grid.tile,
        "overlap": grid.overlap,
        "tiles": grid.count,
        "tiles_run": result.tiles_run,
        "classes": class_path.as_posix(),
        "overlay": overlay_path.as_posix(),
        "areas": Path(areas_path).as_posix(),
        "georeferenced": source.geo is not None,
    }
