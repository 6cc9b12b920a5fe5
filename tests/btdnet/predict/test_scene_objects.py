"""Per-object statistics of a scene mask (btdnet.predict.scene.objects), strip by strip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("scipy")

from btdnet.predict.scene.objects import ObjectTable  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

# 7 x 6 mask, labelled 2 rows per strip (chunk_pixels = 12), so objects cross strip borders.
MASK = np.array(
    [
        [1, 0, 1, 0, 0, 1],
        [1, 0, 1, 0, 1, 0],
        [1, 0, 1, 0, 0, 0],
        [1, 1, 1, 0, 1, 1],
        [0, 0, 0, 0, 1, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 1, 0, 1, 0, 0],
    ],
    dtype=np.uint8,
)
# Objects (4-connected), by first pixel in raster order:
#   (0,0) a U whose arms are two labels in the first strip and meet in the second: 9 pixels
#   (0,5) one pixel; (1,4) one pixel (touches (0,5) only diagonally: separate objects)
#   (3,4) 9 pixels over three strips, the last strip holding two labels joined only through
#         the strip above (6,1) and (6,3).
PROBABILITY = (np.arange(42).reshape(7, 6) * 5 + 10).astype(np.uint8)  # 10, 15, ..., 215


def _write(path: Path, array: np.ndarray, transform: object | None = None) -> Path:
    profile = {
        "driver": "GTiff",
        "height": array.shape[0],
        "width": array.shape[1],
        "count": 1,
        "dtype": "uint8",
    }
    if transform is not None:
        profile.update(transform=transform, crs="EPSG:32633")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
    return path


def _expected(pixels: list[tuple[int, int]]) -> tuple[float, int]:
    values = [int(PROBABILITY[r, c]) for r, c in pixels]
    return sum(values) / len(values) / 255.0, len(values)


def test_objects_joined_across_strips_by_hand(tmp_path: Path) -> None:
    mask = _write(tmp_path / "mask.tif", MASK * 255)
    probability = _write(tmp_path / "probability.tif", PROBABILITY)
    table = ObjectTable.from_files(mask, probability, chunk_pixels=12)  # 2 rows per strip
    u_shape = [(0, 0), (1, 0), (2, 0), (3, 0), (3, 1), (3, 2), (2, 2), (1, 2), (0, 2)]
    lower = [(3, 4), (3, 5), (4, 4), (5, 4), (5, 3), (5, 2), (5, 1), (6, 1), (6, 3)]
    assert len(table) == 4
    assert table.first.tolist() == [0, 5, 10, 22]  # raster indices row * 6 + column
    for (row, column), pixels in [((0, 0), u_shape), ((3, 4), lower)]:
        score, count = table.lookup(row, column)
        want_score, want_count = _expected(pixels)
        assert count == want_count
        assert score == pytest.approx(want_score, abs=1e-12)
    assert table.lookup(0, 5) == pytest.approx(_expected([(0, 5)]))
    assert table.lookup(1, 4) == pytest.approx(_expected([(1, 4)]))
    with pytest.raises(LookupError, match="row 0, column 2"):
        table.lookup(0, 2)  # inside the U, not its first pixel
    # One strip for the whole mask gives the same table.
    whole = ObjectTable.from_files(mask, probability)
    assert whole.first.tolist() == table.first.tolist()
    assert whole.count.tolist() == table.count.tolist()
    assert whole.total.tolist() == table.total.tolist()


def test_polygons_find_their_object_under_a_georeference(tmp_path: Path) -> None:
    """Every polygon of the polygonizer gets the count and mean of its own pixels (checked
    against rasterizing it), with a rotated 0.5 m transform and strips of 5 rows."""
    from rasterio.features import geometry_mask, shapes

    rng = np.random.default_rng(3)
    mask = (rng.random((41, 37)) < 0.45).astype(np.uint8) * 255  # many small objects, holes
    values = rng.integers(0, 256, size=mask.shape, dtype=np.uint8)
    transform = rasterio.Affine(0.5, 0.1, 500000.0, 0.05, -0.5, 5400000.0)
    mask_path = _write(tmp_path / "mask.tif", mask, transform)
    probability_path = _write(tmp_path / "probability.tif", values, transform)
    table = ObjectTable.from_files(mask_path, probability_path, chunk_pixels=37 * 5)
    polygons = list(shapes(mask, mask=mask > 0, connectivity=4, transform=transform))
    assert len(polygons) == len(table) > 20
    for geometry, _ in polygons:
        inside = geometry_mask([geometry], mask.shape, transform, invert=True)
        score, count = table.for_polygon(geometry, ~transform)
        assert count == int(inside.sum())
        assert score == pytest.approx(values[inside].mean() / 255.0, abs=1e-12)


def test_one_scene_wide_object_with_many_holes(tmp_path: Path) -> None:
    """A 600 x 600 object with 22,500 one-pixel holes: one object, scored in one pass."""
    mask = np.full((600, 600), 255, dtype=np.uint8)
    mask[2::4, 2::4] = 0  # 150 x 150 holes
    values = np.full(mask.shape, 200, dtype=np.uint8)
    values[:300] = 100
    mask_path = _write(tmp_path / "mask.tif", mask)
    probability_path = _write(tmp_path / "probability.tif", values)
    table = ObjectTable.from_files(mask_path, probability_path, chunk_pixels=600 * 7)
    assert len(table) == 1
    score, count = table.lookup(0, 0)
    assert count == 600 * 600 - 150 * 150
    assert score == pytest.approx((100 + 200) / 2 / 255.0)


def test_empty_mask(tmp_path: Path) -> None:
    mask_path = _write(tmp_path / "mask.tif", np.zeros((5, 9), np.uint8))
    probability_path = _write(tmp_path / "probability.tif", np.ones((5, 9), np.uint8))
    table = ObjectTable.from_files(mask_path, probability_path, chunk_pixels=9)
    assert len(table) == 0
    with pytest.raises(LookupError):
        table.lookup(0, 0)
