"""Tile grids and blending weights for scene-scale prediction.

A scene of ``H x W`` pixels is covered by square tiles of side ``T`` placed on a regular grid
with stride ``S = T - O`` (``O`` = overlap, at most ``T / 2``): tile ``i`` starts at ``i * S``
and the last tile may reach past the scene edge (the reader pads it by reflection; what falls
outside the scene is dropped). Because ``S >= T / 2``, a pixel lies in at most two tiles along
each axis, so a row of tiles shares rows with its two neighbours only.

Blending: along each axis, the ``O`` pixels shared by two neighbouring tiles get the weights
``cos^2`` (the earlier tile) and ``sin^2`` (the later tile) of a quarter turn sampled at pixel
centres. The two weights sum to one, so the blend is a weighted sum with no normalisation;
away from overlaps (and at the scene border) a tile's weight is 1. The transition is smooth
(its derivative vanishes at both ends of the overlap), so seams do not show.

Streaming a scene row by row (:class:`RowBlend`, :func:`stitch`): a row of tiles is blended
along x into a ``(C, h, W)`` strip; along y it splits into the band it shares with the row
above (``top``, already weighted), the rows only it covers (``core``, weight 1: final) and the
band it shares with the row below (``bottom``, weighted). The final values over a shared band
are ``bottom(r) + top(r + 1)``, so the rows can be computed apart (and in any order) and
joined by :func:`stitch` in scene order. btdnet's scene mode (one probability channel) and
``bicor-predict`` (K logit channels) both stream scenes this way.

The closed-set benchmark keeps its authors' protocol (GeoSeg's sliding window): windows every
``stride`` with the last one moved back inside the image (:func:`window_starts`, ``clamp``) or
the image padded until the windows tile it (:func:`padded_length`, ``pad``), and overlapping
windows averaged with equal weights (``1 /`` :func:`coverage`); the training data's evaluation
crops use the same :func:`window_starts`.

Who uses what: btdnet's scene mode (:mod:`btdnet.predict.scene`, and through it the scene
benchmark, :mod:`btdnet.tools.benchmark_scene`, and the server's scene jobs) and
``bicor-predict`` (:mod:`bicor.predict.scene`) place tiles with :class:`TileGrid` and blend
them with :class:`RowBlend` and :func:`stitch`; BiCoR-Seg's evaluation
(:func:`bicor.inference.sliding_window_predict`) and its training crops use
:func:`window_starts`, :func:`padded_length` and :func:`coverage`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class AxisGrid:
    """Tile starts along one axis.

    Attributes:
        length: the scene's extent along the axis, in pixels.
        tile: tile side ``T``.
        overlap: pixels shared by neighbouring tiles ``O`` (``0 <= O <= T / 2``).
    """

    length: int
    tile: int
    overlap: int

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError(f"scene length must be >= 1, got {self.length}")
        if self.tile < 1:
            raise ValueError(f"tile size must be >= 1, got {self.tile}")
        if not 0 <= 2 * self.overlap <= self.tile:
            raise ValueError(
                f"overlap must lie in [0, tile/2] = [0, {self.tile // 2}], got {self.overlap}"
            )

    @property
    def stride(self) -> int:
        """Distance between tile starts, ``T - O``."""
        return self.tile - self.overlap

    @property
    def count(self) -> int:
        """Number of tiles: the fewest on the grid that cover ``length``."""
        return max(1, math.ceil((self.length - self.overlap) / self.stride))

    def start(self, index: int) -> int:
        """First pixel of tile ``index``."""
        return index * self.stride

    def extent(self, index: int) -> tuple[int, int]:
        """``(start, stop)`` of tile ``index`` clipped to the scene."""
        start = self.start(index)
        return start, min(start + self.tile, self.length)

    def weights(self, index: int) -> np.ndarray:
        """float32 (T,) blending weight of tile ``index`` (see the module docstring)."""
        weight = np.ones(self.tile, dtype=np.float32)
        if self.overlap == 0:
            return weight
        rising = ramp(self.overlap)  # (O,)
        if index > 0:
            weight[: self.overlap] = rising
        if index < self.count - 1:
            weight[self.tile - self.overlap :] = 1.0 - rising
        return weight


def ramp(overlap: int) -> np.ndarray:
    """float32 (O,) ``sin^2`` rise from near 0 to near 1 over ``overlap`` pixels."""
    centres = (np.arange(overlap, dtype=np.float64) + 0.5) / overlap
    return (np.sin(0.5 * np.pi * centres) ** 2).astype(np.float32)


@dataclass(frozen=True)
class TileGrid:
    """The tiles of an ``height x width`` scene: rows of tiles along y, columns along x."""

    height: int
    width: int
    tile: int
    overlap: int

    @property
    def rows(self) -> AxisGrid:
        """Tile placement along y."""
        return AxisGrid(self.height, self.tile, self.overlap)

    @property
    def columns(self) -> AxisGrid:
        """Tile placement along x."""
        return AxisGrid(self.width, self.tile, self.overlap)

    @property
    def count(self) -> int:
        """Number of tiles in the scene."""
        return self.rows.count * self.columns.count


def resolve_tile(tile: int | str, input_side: int) -> int:
    """``"auto"`` -> the model's input side; an int (or digit string) >= 32 as given."""
    if isinstance(tile, str):
        if tile.strip().lower() == "auto":
            return input_side
        if not (tile.strip().isascii() and tile.strip().isdigit()):  # not "¹²⁸"
            raise ValueError(f"tile must be a number of pixels or 'auto', got {tile!r}")
        tile = int(tile)
    if tile < 32:
        raise ValueError(f"tile must be at least 32 pixels, got {tile}")
    return int(tile)


def default_overlap(tile: int) -> int:
    """One eighth of the tile, rounded down to an even number of pixels (60 for 480)."""
    return (tile // 8) // 2 * 2


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Starts of ``window``-long windows every ``stride`` over ``[0, length)``, the last one
    moved back to end exactly at ``length`` (``clamp``); ``length <= window`` gives ``[0]``."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def padded_length(length: int, window: int, stride: int) -> int:
    """The length ``pad`` pads to so that windows every ``stride`` end exactly there
    (``ceil(length / window) * window`` when ``stride == window``, GeoSeg's padding)."""
    if length <= window:
        return window
    return window + math.ceil((length - window) / stride) * stride


def coverage(starts: list[int], window: int, length: int) -> np.ndarray:
    """float32 (length,) how many ``window``-long windows of ``starts`` cover each pixel; a
    window's weight in the equal-weight average is ``1 / coverage`` (the product of the two
    axes' coverages on a grid of windows). Raises ValueError if a pixel is left uncovered."""
    count = np.zeros(length, dtype=np.float32)
    for start in starts:
        count[start : start + window] += 1.0
    if not count.all():
        raise ValueError(f"windows {starts} of {window} px leave part of [0, {length}) uncovered")
    return count


@dataclass
class RowSplit:
    """Row ``index`` of a grid split along y (see the module docstring).

    ``top``/``bottom``: (C, O, W) weighted values over the bands shared with the row above and
    below (None for the first/last row); ``core``: what only this row covers, in whatever form
    the caller keeps it (a (C, h, W) array for :class:`RowBlend`).
    """

    index: int
    top: np.ndarray | None
    core: Any
    bottom: np.ndarray | None


class RowBlend:
    """Blends the tiles of row ``index`` of ``grid`` into a float32 (C, h, W) strip.

    Args:
        grid: the scene's tiles.
        index: the row of tiles.
        channels: C, values per pixel (1 probability, K class logits, ...).
    """

    def __init__(self, grid: TileGrid, index: int, channels: int = 1) -> None:
        self.grid, self.index = grid, index
        y0, y1 = grid.rows.extent(index)
        self.values = np.zeros((channels, y1 - y0, grid.width), dtype=np.float32)  # (C, h, W)

    def add(self, column: int, values: np.ndarray) -> None:
        """Add the (C, T, T) output of tile ``column`` weighted along x (the part past the
        scene is dropped)."""
        columns = self.grid.columns
        x0, x1 = columns.extent(column)
        height = self.values.shape[1]
        weighted = values * columns.weights(column)[None, None, :]  # (C, T, T)
        self.values[:, :, x0:x1] += weighted[:, :height, : x1 - x0]

    def split(self) -> RowSplit:
        """(top, core, bottom) of the row, the shared bands multiplied by the y weights."""
        rows, values = self.grid.rows, self.values
        overlap, stride, height = rows.overlap, rows.stride, values.shape[1]
        weights = rows.weights(self.index)[None, :height, None]  # (1, h, 1)
        first, last = self.index == 0, self.index == rows.count - 1
        top = None if first else values[:, :overlap] * weights[:, :overlap]
        bottom = None if last else values[:, stride:] * weights[:, stride:]
        core = values[:, 0 if first else overlap : height if last else stride]  # weight 1
        return RowSplit(self.index, top, core, bottom)


def stitch(rows: AxisGrid, splits: Iterable[RowSplit]) -> Iterator[tuple[int, Any, bool]]:
    """Join row splits given in scene order into final strips.

    Yields ``(first scene row, strip, shared)``: for every row after the first, the band it
    shares with the row above (``bottom(r - 1) + top(r)``, an array, ``shared`` True), then the
    row's ``core`` as the split holds it (``shared`` False).
    """
    previous: np.ndarray | None = None
    for split in splits:
        start = rows.start(split.index)
        if split.top is not None and previous is not None:
            yield start, previous + split.top, True  # the two weights sum to one
            start += rows.overlap
        yield start, split.core, False
        previous = split.bottom


# --- how much work one scene may cause -----------------------------------------------------
# A scene over either limit is refused before any tile runs (and before its stretch is
# sampled), with one line naming the file, what it would cost and the option that raises the
# limit. The defaults allow a 44,000 x 44,000 scene at a 480-pixel tile; the server uses lower
# ones (``btdnet-serve --scene-max-pixels/--scene-max-tiles``).

DEFAULT_SCENE_MAX_PIXELS = 2_000_000_000
DEFAULT_SCENE_MAX_TILES = 50_000


class SceneTooLargeError(ValueError):
    """A scene with more pixels or tiles than allowed (HTTP 413, exit 2 in a single run)."""


def _count(value: float) -> str:
    """A count for people: 3.6e9 -> '3,600,000,000'."""
    return f"{int(value):,}"


def check_scene_size(
    path: str | Path, grid: TileGrid, max_pixels: int | None, max_tiles: int | None
) -> None:
    """Raise :class:`SceneTooLargeError` when ``grid`` exceeds a limit (``None``: none)."""
    pixels = grid.height * grid.width
    if max_pixels is not None and pixels > max_pixels:
        raise SceneTooLargeError(
            f"{path}: the scene has {_count(pixels)} pixels ({grid.width} x {grid.height}), "
            f"above the limit of {_count(max_pixels)}; raise --scene-max-pixels "
            "(0: no limit) if that much work is meant, or choose a coarser --gsd"
        )
    if max_tiles is not None and grid.count > max_tiles:
        raise SceneTooLargeError(
            f"{path}: the scene needs {_count(grid.count)} tiles of {grid.tile} pixels, above "
            f"the limit of {_count(max_tiles)}; raise --scene-max-tiles (0: no limit) or use "
            "a larger --tile"
        )
