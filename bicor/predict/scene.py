"""A BiCoR-Seg class map of an image of any size, tile by tile, in bounded memory.

The image is read window by window (:class:`btdnet.raster.source.SceneSource`: GeoTIFFs
by windows, other formats decoded whole; bands, bit depth and nodata as in btdnet's scene
mode) and cut into square tiles on btdnet's tile grid (:mod:`btdnet.tiling`: ``auto`` = the
model's input side, overlap one eighth of a tile by default). Each row of tiles runs in
batches; the class logits of overlapping tiles are blended with the cos^2 weights of
:class:`~btdnet.tiling.RowBlend` and rows are joined by :func:`~btdnet.tiling.stitch`, the
same code as ``btdnet-predict --tile``. Each finished strip of rows is turned into class ids
(argmax of the blended logits; 255 where the image has no data) and handed to the writer, so
memory holds one row of tiles (K + 4 float channels x tile x width), not the scene.

The blend carries, beside the K logits, the valid-pixel mask and the RGB the model saw (both
blend to themselves: the weights sum to one), from which the overlay's downsampled picture
is taken as the strips go by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bicor.tta import TestTimeAugment
from btdnet.normalization import normalize_array
from btdnet.raster.source import SceneSource
from btdnet.tiling import (
    DEFAULT_SCENE_MAX_PIXELS,
    DEFAULT_SCENE_MAX_TILES,
    RowBlend,
    RowSplit,
    TileGrid,
    check_scene_size,
    default_overlap,
    resolve_tile,
    stitch,
)

NODATA = 255


@dataclass(frozen=True)
class SegmentOptions:
    """How the image is tiled and run.

    Attributes:
        tile: tile side in pixels or ``"auto"`` (the model's ``config.image_size``).
        overlap: pixels shared by neighbouring tiles (``None``: one eighth of the tile).
        batch_size: tiles per forward pass.
        tta: test-time views averaged on every tile (default: none).
        device: where the model runs.
        max_pixels, max_tiles: refuse an image with more pixels or tiles before any tile
            runs (``None``: no limit; :mod:`btdnet.tiling`).
        on_tiles: called with the number of tiles done after every batch (progress).
    """

    tile: int | str = "auto"
    overlap: int | None = None
    batch_size: int = 4
    tta: TestTimeAugment = field(default_factory=TestTimeAugment)
    device: str = "cpu"
    max_pixels: int | None = DEFAULT_SCENE_MAX_PIXELS
    max_tiles: int | None = DEFAULT_SCENE_MAX_TILES
    on_tiles: Callable[[int], None] | None = None


@dataclass
class SegmentResult:
    """What :func:`segment_image` produced: the grid, and per-class pixel counts."""

    grid: TileGrid
    counts: np.ndarray  # int64 (256,): pixels per class id (255: no data)
    tiles_run: int = 0


def tile_grid(model: Any, source: SceneSource, options: SegmentOptions) -> TileGrid:
    """The tiles of ``source`` for ``model`` (ValueError for a bad tile size or overlap)."""
    tile = resolve_tile(options.tile, int(model.config.image_size))
    overlap = default_overlap(tile) if options.overlap is None else int(options.overlap)
    grid = TileGrid(source.height, source.width, tile, overlap)
    grid.rows.weights(0)  # validates the overlap
    check_scene_size(source.path, grid, options.max_pixels, options.max_tiles)
    return grid


class RowSegmenter:
    """Runs the rows of tiles of one image through a BiCoR-Seg model."""

    def __init__(self, model: Any, source: SceneSource, grid: TileGrid, options: SegmentOptions):
        self.model, self.source, self.grid, self.options = model, source, grid, options
        self.classes = int(model.num_classes)
        self.tiles_run = 0

    @torch.inference_mode()
    def logits(self, tiles: list[np.ndarray]) -> np.ndarray:
        """uint8 (T, T, 3) tiles -> float32 (n, K, T, T) class logits (TTA views averaged)."""
        pixels = torch.stack([normalize_array(t) for t in tiles]).to(self.options.device)
        out = self.options.tta(lambda x: self.model(x).logits, pixels)  # (n, K, T, T)
        self.tiles_run += len(tiles)
        return out.float().cpu().numpy()

    def run(self, index: int) -> RowSplit:
        """Row ``index`` blended: channels K logits, valid mask, R, G, B."""
        columns, tile = self.grid.columns, self.grid.tile
        y0 = self.grid.rows.start(index)
        blend = RowBlend(self.grid, index, channels=self.classes + 4)
        for first in range(0, columns.count, self.options.batch_size):
            batch = range(first, min(first + self.options.batch_size, columns.count))
            reads = [self.source.read(y0, columns.start(j), tile) for j in batch]
            kept = [k for k, (_, valid) in enumerate(reads) if valid.any()]
            if kept:  # tiles without data are not run: their pixels stay nodata
                logits = self.logits([reads[k][0] for k in kept])
            for slot, k in enumerate(kept):
                rgb, valid = reads[k]
                valid = valid.astype(np.float32)  # (T, T)
                rgb = rgb.transpose(2, 0, 1).astype(np.float32)  # (3, T, T)
                stacked = np.concatenate([logits[slot], valid[None], rgb]) * valid
                blend.add(batch[k], stacked)
            if self.options.on_tiles is not None:
                self.options.on_tiles(len(batch))
        return blend.split()


def class_strips(
    segmenter: RowSegmenter,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first row, uint8 (h, W) class ids with 255 = no data, uint8 (h, W, 3) RGB) strips."""
    rows = segmenter.grid.rows
    splits = (segmenter.run(index) for index in range(rows.count))
    classes = segmenter.classes
    for start, strip, _shared in stitch(rows, splits):
        if strip.shape[1] == 0:
            continue
        valid = strip[classes] > 0.5  # (h, W): the valid mask blends to itself
        ids = strip[:classes].argmax(axis=0).astype(np.uint8)
        ids[~valid] = NODATA
        rgb = np.clip(np.round(strip[classes + 1 :]), 0, 255).astype(np.uint8)
        yield start, ids, rgb.transpose(1, 2, 0)


def segment_image(
    model: Any,
    source: SceneSource,
    sink: Callable[[int, np.ndarray, np.ndarray], None],
    options: SegmentOptions | None = None,
) -> SegmentResult:
    """Segment ``source`` tile by tile; ``sink(first_row, ids, rgb)`` receives the strips in
    scene order. Returns the grid and the per-class pixel counts."""
    options = options or SegmentOptions()
    model.eval()
    grid = tile_grid(model, source, options)
    segmenter = RowSegmenter(model, source, grid, options)
    counts = np.zeros(256, dtype=np.int64)
    for start, ids, rgb in class_strips(segmenter):
        counts += np.bincount(ids.ravel(), minlength=256)
        sink(start, ids, rgb)
    return SegmentResult(grid=grid, counts=counts, tiles_run=segmenter.tiles_run)
