"""Polygons for GIS users (:mod:`btdnet.predict.vectors`): simplification with topology kept,
a minimum area, RFC 7946 GeoJSON (WGS 84 lon/lat checked against a hand computation, no
``crs`` member) and the native CRS on request; ``btdnet-predict`` checks the options."""

from __future__ import annotations

import math

import numpy as np
import pytest

from btdnet.predict.cli import main
from btdnet.predict.vectors import VectorOptions, mask_to_geojson
from btdnet.raster.geo import GeoReference

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")

UTM33N = rasterio.crs.CRS.from_epsg(32633).to_wkt()
# 0.5 m pixels; the top-left corner on UTM 33N's central meridian (15 E), 1000 m north of the
# equator: near there, lon/lat follow from the scale factor and the ellipsoid by hand.
NEAR_EQUATOR = GeoReference(UTM33N, (0.5, 0.0, 500000.0, 0.0, -0.5, 1000.0), 32633)
K0, A, E2 = 0.9996, 6378137.0, 0.00669438  # UTM scale, WGS 84 semi-major axis, eccentricity^2


def disk(side: int, diameter: int, centre: tuple[int, int]) -> np.ndarray:
    """bool (side, side): a round object ``diameter`` pixels across (a storage tank)."""
    y, x = np.mgrid[0:side, 0:side]
    radius = diameter / 2
    return (y + 0.5 - centre[0]) ** 2 + (x + 0.5 - centre[1]) ** 2 <= radius**2


def ring_of(collection: dict, index: int = 0) -> np.ndarray:
    return np.asarray(collection["features"][index]["geometry"]["coordinates"][0])


def test_simplify_leaves_a_12_px_tank_with_few_vertices_and_its_shape() -> None:
    mask = disk(40, 12, (20, 20))
    native = VectorOptions(geojson_crs="native")
    traced = ring_of(mask_to_geojson(mask, NEAR_EQUATOR, None, native))
    assert len(traced) > 20  # pixel edges: a staircase
    simple = VectorOptions(simplify=0.5, geojson_crs="native")  # 0.5 m = 1 pixel
    ring = ring_of(mask_to_geojson(mask, NEAR_EQUATOR, None, simple))
    assert len(ring) - 1 == 8  # an octagon (the ring repeats its first vertex)
    polygon = shapely.geometry.Polygon(ring)
    assert polygon.is_valid
    assert abs(polygon.area - mask.sum() * 0.25) < 0.05 * mask.sum() * 0.25
    centre = polygon.centroid
    assert abs(centre.x - (500000 + 10)) < 0.5 and abs(centre.y - (1000 - 10)) < 0.5


def test_simplify_keeps_a_hole_inside_its_polygon() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[4:36, 4:36] = True
    mask[14:26, 14:26] = False  # a courtyard
    options = VectorOptions(simplify=3.0, geojson_crs="native")
    (feature,) = mask_to_geojson(mask, NEAR_EQUATOR, None, options)["features"]
    polygon = shapely.geometry.shape(feature["geometry"])
    assert len(polygon.interiors) == 1 and polygon.is_valid
    assert polygon.area == pytest.approx((32 * 32 - 12 * 12) * 0.25)


def test_min_area_drops_the_small_object_only() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[2:5, 2:5] = True  # 9 px = 2.25 m^2
    mask[20:32, 20:32] = True  # 144 px = 36 m^2
    everything = mask_to_geojson(mask, NEAR_EQUATOR, None, VectorOptions(geojson_crs="native"))
    assert len(everything["features"]) == 2
    options = VectorOptions(min_area=5.0, geojson_crs="native")
    (kept,) = mask_to_geojson(mask, NEAR_EQUATOR, None, options)["features"]
    ring = np.asarray(kept["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == 500000 + 20 * 0.5  # the large object
    assert (
        len(mask_to_geojson(mask, NEAR_EQUATOR, None, VectorOptions(min_area=2.25))["features"])
        == 2
    )


def test_geojson_is_wgs84_lon_lat_matching_a_hand_computation() -> None:
    mask = np.zeros((40, 60), dtype=bool)
    mask[10:30, 0:50] = True  # x 500000..500025 m, y 995..985 m
    collection = mask_to_geojson(mask, NEAR_EQUATOR, {"text": "a field"})
    assert "crs" not in collection and collection["type"] == "FeatureCollection"
    ring = ring_of(collection)
    # On the equator at the central meridian: 1 m east = 1 / (k0 a) rad of longitude,
    # 1 m north = 1 / (k0 a (1 - e^2)) rad of latitude (the meridian's radius there).
    lon = 15.0 + np.degrees(np.array([0.0, 25.0]) / (K0 * A))
    lat = np.degrees(np.array([985.0, 995.0]) / (K0 * A * (1 - E2)))
    assert ring[:, 0].min() == pytest.approx(lon[0], abs=1e-9)  # exactly the central meridian
    assert ring[:, 0].max() == pytest.approx(lon[1], abs=1e-7)  # ~1 cm
    assert (ring[:, 1].min(), ring[:, 1].max()) == pytest.approx(tuple(lat), abs=1e-7)
    assert collection["features"][0]["properties"] == {"text": "a field"}


def test_native_option_keeps_map_units_and_the_crs_member() -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:4, 2:6] = True
    collection = mask_to_geojson(mask, NEAR_EQUATOR, None, VectorOptions(geojson_crs="native"))
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    assert ring_of(collection)[:, 0].min() == 500001.0 and not math.isnan(ring_of(collection)[0, 1])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--simplify", "-1", "--simplify must be >= 0"), ("--min-area", "-2", "--min-area must")],
)
def test_cli_refuses_a_negative_tolerance_or_area(tmp_path, capsys, option, value, message):
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    code = main(
        ["--checkpoint", str(tmp_path), "--image", str(image), "--text", "x", "--out",
         str(tmp_path / "out"), option, value]
    )  # fmt: skip
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_vector_options_refuse_nan_negative_and_unknown_frames() -> None:
    assert VectorOptions(simplify=0.0, min_area=0.0).geojson_crs == "wgs84"
    for kwargs, message in (
        ({"simplify": float("nan")}, "--simplify must be >= 0"),
        ({"min_area": float("nan")}, "--min-area must be >= 0"),
        ({"min_area": -1e-9}, "--min-area must be >= 0"),
        ({"geojson_crs": "WGS84"}, "--geojson-crs must be one of"),
    ):
        with pytest.raises(ValueError, match=message):
            VectorOptions(**kwargs)


def test_the_crs_member_names_the_epsg_code_else_the_wkt_else_nothing() -> None:
    from btdnet.predict.vectors import GeoJsonFrame, crs_member

    wkt_only = GeoReference(UTM33N, NEAR_EQUATOR.transform, None)
    assert crs_member(NEAR_EQUATOR)["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    assert crs_member(wkt_only) == {"type": "name", "properties": {"name": UTM33N}}
    no_crs = GeoReference("", NEAR_EQUATOR.transform, None)
    assert crs_member(no_crs) is None
    assert GeoJsonFrame(no_crs, VectorOptions()).header() == {"type": "FeatureCollection"}
    assert GeoJsonFrame(None, VectorOptions()).header() == {"type": "FeatureCollection"}
    # a CRS that converts to WGS 84: no crs member (RFC 7946); asked native: the member
    assert "crs" not in GeoJsonFrame(NEAR_EQUATOR, VectorOptions()).header()
    native = GeoJsonFrame(NEAR_EQUATOR, VectorOptions(geojson_crs="native"))
    assert native.header()["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"


def test_min_area_subtracts_holes_and_every_feature_gets_its_own_properties() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:8, 2:8] = True  # 36 px = 9 m^2, with a 4 px hole: 32 px = 8 m^2
    mask[4:6, 4:6] = False
    mask[12:15, 12:15] = True  # 9 px = 2.25 m^2
    keep_ring = VectorOptions(min_area=8.0, geojson_crs="native")
    collection = mask_to_geojson(mask, NEAR_EQUATOR, {"text": "tank"}, keep_ring)
    assert len(collection["features"]) == 1  # 8 m^2 is kept (not below), 2.25 dropped
    assert len(collection["features"][0]["geometry"]["coordinates"]) == 2  # the hole stays
    over = VectorOptions(min_area=8.01, geojson_crs="native")
    assert mask_to_geojson(mask, NEAR_EQUATOR, None, over)["features"] == []
    both = mask_to_geojson(mask, NEAR_EQUATOR, {"text": "tank"}, VectorOptions())["features"]
    assert [f["properties"] for f in both] == [{"text": "tank"}, {"text": "tank"}]
    both[0]["properties"]["id"] = 1
    assert both[1]["properties"] == {"text": "tank"}
