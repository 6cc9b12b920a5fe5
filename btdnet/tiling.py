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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
