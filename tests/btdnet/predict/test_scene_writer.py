"""The scene writer's polygons: every written object has its own number, 1 2 3 ... in the
GeoJSON and the GeoPackage alike, even when objects below ``--min-area`` were dropped between
them (the polygonizer's own numbering then has gaps)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rasterio")
fiona = pytest.importorskip("fiona")
pytest.importorskip("shapely")
from btdnet.predict.scene.writer import write_vectors  # noqa: E402
from btdnet.predict.vectors import VectorOptions  # noqa: E402


def square(x: int, y: int, side: int, number: int) -> dict:
    ring = [(x, y), (x + side, y), (x + side, y + side), (x, y + side), (x, y)]
    properties = {
        "id": number,
        "score": 0.9,
        "area": float(side * side),
        "area_pixels": side * side,
        "bbox_x1": x,
        "bbox_y1": y,
        "bbox_x2": x + side,
        "bbox_y2": y + side,
    }
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": properties,
    }


def test_written_objects_are_numbered_without_the_gaps_of_dropped_ones(tmp_path) -> None:
    # the polygonizer's objects 1 and 3 are specks below the minimum area; 2 and 4 are kept
    found = [square(0, 0, 2, 1), square(10, 0, 5, 2), square(20, 0, 1, 3), square(0, 10, 6, 4)]
    geojson, gpkg = tmp_path / "objects.geojson", tmp_path / "objects.gpkg"
    written, small = write_vectors(
        iter(found), geojson, gpkg, None, "roofs", VectorOptions(min_area=10.0)
    )
    assert (written, small) == (2, 2)
    features = json.loads(geojson.read_text())["features"]
    assert [f["properties"]["id"] for f in features] == [1, 2]
    assert [f["properties"]["area_pixels"] for f in features] == [25, 36]
    assert {f["properties"]["text"] for f in features} == {"roofs"}
    with fiona.open(gpkg) as layer:
        stored = [(f.properties["id"], f.properties["area_pixels"]) for f in layer]
    assert stored == [(1, 25), (2, 36)]
