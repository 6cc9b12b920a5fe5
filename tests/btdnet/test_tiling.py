"""The one tiling module (:mod:`btdnet.tiling`): tile grids, the cos^2 blend checked against its
formula, row-by-row blending joined by ``stitch`` equal to blending the whole scene at once, and
the closed-set benchmark's clamp/pad windows with their equal-weight coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from btdnet.tiling import (
    AxisGrid,
    RowBlend,
    TileGrid,
    coverage,
    default_overlap,
    padded_length,
    ramp,
    resolve_tile,
    stitch,
    window_starts,
)


def test_ramp_is_sin_squared_of_a_quarter_turn_at_pixel_centres() -> None:
    overlap = 4
    expected = [math.sin(math.pi / 2 * (k + 0.5) / overlap) ** 2 for k in range(overlap)]
    assert np.allclose(ramp(overlap), expected, atol=1e-7)
    # by hand: sin^2(pi/16) = 0.0380602, sin^2(3 pi/16) = 0.3086583
    assert np.allclose(ramp(overlap)[:2], [0.0380602, 0.3086583], atol=1e-6)


def test_tile_weights_follow_the_formula_at_each_position() -> None:
    axis = AxisGrid(length=250, tile=96, overlap=16)  # starts 0, 80, 160 (+ reaching past)
    assert [axis.start(i) for i in range(axis.count)] == [0, 80, 160]
    k = np.arange(16)
    rising = np.sin(np.pi / 2 * (k + 0.5) / 16) ** 2
    first, middle, last = (axis.weights(i) for i in range(3))
    # first tile: 1 up to its shared band, then cos^2 falling
    falling = np.cos(np.pi / 2 * (k + 0.5) / 16) ** 2
    assert np.allclose(first[:80], 1.0) and np.allclose(first[80:], falling, atol=1e-7)
    # middle tile: sin^2 rising, 1, cos^2 falling
    assert np.allclose(middle[:16], rising, atol=1e-7) and np.allclose(middle[16:80], 1.0)
    assert np.allclose(middle[80:], 1.0 - rising, atol=1e-7)
    # last tile: rising at its start, 1 to its end (the scene border)
    assert np.allclose(last[:16], rising, atol=1e-7) and np.allclose(last[16:], 1.0)
    assert np.allclose(AxisGrid(250, 96, 0).weights(1), 1.0)  # no overlap: no blend


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(1, 96, 12), (96, 96, 12), (250, 96, 16), (301, 64, 32), (333, 128, 0)],
)
def test_tile_weights_sum_to_one_and_tiles_cover_the_scene(length, tile, overlap) -> None:
    axis = AxisGrid(length, tile, overlap)
    total = np.zeros(axis.count * axis.stride + tile, dtype=np.float64)
    for index in range(axis.count):
        start = axis.start(index)
        total[start : start + tile] += axis.weights(index)
    assert np.allclose(total[:length], 1.0, atol=1e-6)
    assert axis.start(axis.count - 1) + tile >= length  # covered
    assert axis.count == 1 or axis.start(axis.count - 2) + tile < length  # no tile too many


def test_tile_options_are_checked() -> None:
    assert resolve_tile("auto", 96) == 96
    assert resolve_tile("64", 96) == 64
    assert default_overlap(480) == 60
    with pytest.raises(ValueError, match="overlap"):
        AxisGrid(100, 96, 49)
    with pytest.raises(ValueError, match="at least 32"):
        resolve_tile(16, 96)


def _whole_scene_blend(grid: TileGrid, tiles: dict) -> np.ndarray:
    """The reference: every tile times the outer product of its two axis weights, summed."""
    rows, columns = grid.rows, grid.columns
    side = grid.tile
    channels = next(iter(tiles.values())).shape[0]
    size = (rows.count * rows.stride + side, columns.count * columns.stride + side)
    canvas = np.zeros((channels, *size))
    for (r, c), values in tiles.items():
        y, x = rows.start(r), columns.start(c)
        weight = np.outer(rows.weights(r), columns.weights(c))  # (T, T)
        canvas[:, y : y + side, x : x + side] += values * weight
    return canvas[:, : grid.height, : grid.width]


def test_row_blends_stitched_equal_the_whole_scene_blend() -> None:
    grid = TileGrid(height=150, width=170, tile=64, overlap=16)  # 3 x 3 tiles
    rng = np.random.default_rng(0)
    tiles = {
        (r, c): rng.random((2, 64, 64)).astype(np.float32)
        for r in range(grid.rows.count)
        for c in range(grid.columns.count)
    }
    splits = {}
    for r in reversed(range(grid.rows.count)):  # rows are independent: any order
        blend = RowBlend(grid, r, channels=2)
        for c in range(grid.columns.count):
            blend.add(c, tiles[r, c])
        splits[r] = blend.split()
    assert splits[0].top is None and splits[2].bottom is None
    joined = np.full((2, grid.height, grid.width), np.nan, dtype=np.float32)
    shared_starts = []
    for start, strip, shared in stitch(grid.rows, (splits[r] for r in range(3))):
        joined[:, start : start + strip.shape[1]] = strip
        if shared:
            shared_starts.append(start)
    assert shared_starts == [48, 96]  # the bands rows 1 and 2 share with the row above
    assert not np.isnan(joined).any()  # every scene row written once
    assert np.allclose(joined, _whole_scene_blend(grid, tiles), atol=1e-5)


def test_window_starts_clamp_the_last_window() -> None:
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]
    assert window_starts(3, 4, 2) == [0]
    assert window_starts(8, 4, 4) == [0, 4]
    assert window_starts(64, 32, 24) == [0, 24, 32]


def test_padded_length_lets_the_windows_tile_the_image() -> None:
    assert padded_length(5, 4, 4) == 8 and padded_length(1024, 1024, 1024) == 1024
    assert padded_length(2000, 1024, 1024) == 2048 and padded_length(10, 4, 3) == 10


def test_coverage_counts_the_windows_over_each_pixel() -> None:
    # windows [0,4) [3,7) [6,10) [7,11): the equal-weight average divides by these counts
    assert coverage([0, 3, 6, 7], 4, 11).tolist() == [1, 1, 1, 2, 1, 1, 2, 2, 2, 2, 1]
    with pytest.raises(ValueError, match="uncovered"):
        coverage([0, 6], 4, 11)


def test_scene_size_limits_at_their_boundary(tmp_path) -> None:
    from btdnet.tiling import SceneTooLargeError, check_scene_size

    grid = TileGrid(200, 250, 96, 16)  # 3 x 3 tiles, 50000 pixels
    check_scene_size(tmp_path, grid, max_pixels=50000, max_tiles=9)
    check_scene_size(tmp_path, grid, max_pixels=None, max_tiles=None)
    with pytest.raises(SceneTooLargeError, match="9 tiles of 96 pixels"):
        check_scene_size(tmp_path, grid, max_pixels=None, max_tiles=8)
    with pytest.raises(SceneTooLargeError, match="50,000 pixels"):
        check_scene_size(tmp_path, grid, max_pixels=49999, max_tiles=None)


def test_tile_and_overlap_options_at_their_boundaries() -> None:
    assert resolve_tile(32, 96) == 32 and resolve_tile(" AUTO ", 96) == 96
    assert resolve_tile(" 48 ", 96) == 48
    with pytest.raises(ValueError, match="at least 32 pixels, got 31"):
        resolve_tile("31", 96)
    for wrong in ("¹²⁸", "64px", "6.4e1", "-64", ""):
        with pytest.raises(ValueError, match="a number of pixels or 'auto'"):
            resolve_tile(wrong, 96)
    # one eighth, rounded down to an even number: 104 / 8 = 13 -> 12; 40 / 8 = 5 -> 4
    assert [default_overlap(t) for t in (96, 104, 40, 32, 480)] == [12, 12, 4, 4, 60]
    assert AxisGrid(100, 96, 48).stride == 48  # half the tile is the most it may share
    assert AxisGrid(100, 96, 0).stride == 96
    for length, tile, overlap, message in (
        (100, 96, 49, "overlap must lie in"),
        (100, 96, -1, "overlap must lie in"),
        (0, 96, 8, "scene length must be >= 1, got 0"),
        (100, 0, 0, "tile size must be >= 1, got 0"),
    ):
        with pytest.raises(ValueError, match=message):
            AxisGrid(length, tile, overlap)
    # the fewest tiles that cover the length: 96 + 80 = 176 needs two, 177 needs three
    assert AxisGrid(176, 96, 16).count == 2 and AxisGrid(177, 96, 16).count == 3
    assert AxisGrid(96, 96, 16).count == 1 and AxisGrid(97, 96, 16).count == 2
    assert AxisGrid(250, 96, 16).extent(2) == (160, 250)
