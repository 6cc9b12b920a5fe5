"""How much work one scene may cause: its pixels (after ``gsd``) and its tiles.

A scene over either limit is refused before any tile runs (and before the stretch is
sampled), with one line that names the file, what it would cost and the option that raises
the limit. The defaults allow a 44,000 x 44,000 scene at the model's native tile; the
server uses lower ones (``btdnet-serve --scene-max-pixels/--scene-max-tiles``).
"""

from __future__ import annotations

from pathlib import Path

from btdnet.tiling import TileGrid

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
