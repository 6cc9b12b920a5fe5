"""Per-object statistics of a scene mask, computed strip by strip in bounded memory.

Every 4-connected object of the mask gets its pixel count and the sum of its uint8
probabilities. The mask is labelled in strips of at most :data:`CHUNK_PIXELS` pixels
(``scipy.ndimage.label``); labels that touch across two strips are joined afterwards as the
connected components of a sparse graph. Each object is keyed by its first pixel in raster order
(``row * width + column``), which is also the top-left corner of the topmost-then-leftmost
vertex of the exterior ring of the polygon that GDAL's polygonizer makes of it: that is how a
polygon finds its statistics (:meth:`ObjectTable.for_polygon`) without being rasterized again.

The cost is one pass over the two rasters (linear in the pixels) plus a few numbers per object;
rasterizing each polygon instead costs rows x vertices, which for one scene-wide polygon with
thousands of holes grows with the cube of the scene side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from btdnet.raster.geo import require_rasterio

CHUNK_PIXELS = 1 << 20


@dataclass
class _Strips:
    """What the labelling of the strips collected (labels numbered 1.. across the scene)."""

    first: list[np.ndarray]  # (n_i,) int64 first pixel (raster index) of each strip label
    count: list[np.ndarray]  # (n_i,) int64 pixels
    total: list[np.ndarray]  # (n_i,) float64 sum of uint8 probabilities (exact integers)
    joins: list[np.ndarray]  # (k_i, 2) int64 pairs of labels touching across a strip border
    labels: int = 0


def _label_strip(
    mask: np.ndarray, probability: np.ndarray, top: int, found: _Strips
) -> tuple[np.ndarray, np.ndarray]:
    """Label one strip and record its objects; returns the global labels of its first and
    last rows, (W,) each (0 = background)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask)  # (h, W) int32, 4-connected (the default cross)
    flat = labels.ravel()
    where = np.flatnonzero(flat)  # (m,) raster indices inside the strip, increasing
    local = flat[where].astype(np.int64) - 1  # (m,) 0..n-1
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, local, where)
    found.first.append(first + top * mask.shape[1])
    found.count.append(np.bincount(local, minlength=n).astype(np.int64))
    found.total.append(np.bincount(local, weights=probability.ravel()[where], minlength=n))
    edges = labels[[0, -1]].astype(np.int64)  # (2, W)
    edges = np.where(edges > 0, edges + found.labels, 0)
    found.labels += n
    return edges[0], edges[1]


def _join(above: np.ndarray | None, below: np.ndarray, found: _Strips) -> None:
    """Record the label pairs that touch across the border between two strips."""
    if above is None:
        return
    both = (above > 0) & (below > 0)  # (W,)
    if both.any():
        pairs = np.stack([above[both], below[both]], axis=1)  # (k, 2)
        found.joins.append(np.unique(pairs, axis=0))


@dataclass
class ObjectTable:
    """Pixel count and probability sum of every object, sorted by first pixel."""

    width: int
    first: np.ndarray  # (N,) int64, increasing
    count: np.ndarray  # (N,) int64
    total: np.ndarray  # (N,) float64

    @classmethod
    def from_files(
        cls, mask_path: Path, probability_path: Path, chunk_pixels: int = CHUNK_PIXELS
    ) -> ObjectTable:
        """Label ``mask_path`` (non-zero = object) and sum ``probability_path`` per object."""
        rasterio = require_rasterio("object statistics of the scene mask")
        from rasterio.windows import Window

        found = _Strips([], [], [], [])
        with rasterio.open(mask_path) as mask, rasterio.open(probability_path) as probability:
            height, width = mask.height, mask.width
            rows = max(1, chunk_pixels // width)
            previous_last: np.ndarray | None = None
            for top in range(0, height, rows):
                window = Window(0, top, width, min(rows, height - top))
                strip = mask.read(1, window=window) > 0  # (h, W)
                first_row, last_row = _label_strip(
                    strip, probability.read(1, window=window), top, found
                )
                _join(previous_last, first_row, found)
                previous_last = last_row
        return cls._merge(width, found)

    @classmethod
    def _merge(cls, width: int, found: _Strips) -> ObjectTable:
        """Join the labels that touch across strips into objects."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = found.labels
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(width, empty, empty, np.zeros(0))
        first = np.concatenate(found.first)
        count = np.concatenate(found.count)
        total = np.concatenate(found.total)
        joins = np.concatenate(found.joins) - 1 if found.joins else np.zeros((0, 2), np.int64)
        graph = coo_matrix((np.ones(len(joins)), (joins[:, 0], joins[:, 1])), shape=(n, n))
        objects, component = connected_components(graph, directed=False)  # (n,) 0..objects-1
        merged_first = np.full(objects, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(merged_first, component, first)
        merged_count = np.bincount(component, weights=count, minlength=objects).astype(np.int64)
        merged_total = np.bincount(component, weights=total, minlength=objects)
        order = np.argsort(merged_first)
        return cls(width, merged_first[order], merged_count[order], merged_total[order])

    def __len__(self) -> int:
        return len(self.first)

    def lookup(self, row: int, column: int) -> tuple[float, int]:
        """(mean probability in [0, 1], pixels) of the object whose first pixel is there."""
        key = row * self.width + column
        position = int(np.searchsorted(self.first, key))
        if position >= len(self.first) or self.first[position] != key:
            raise LookupError(f"no object starts at pixel (row {row}, column {column})")
        count = int(self.count[position])
        return float(self.total[position]) / count / 255.0, count

    def for_polygon(self, geometry: dict[str, Any], inverse: Any) -> tuple[float, int]:
        """Statistics of the object a polygonizer polygon outlines.

        ``inverse`` maps map coordinates to pixel (column, row) corners (the inverse of the
        raster's affine transform). The exterior ring's topmost, then leftmost, corner is the
        top-left corner of the object's first pixel in raster order.
        """
        ring = np.asarray(geometry["coordinates"][0], dtype=np.float64)  # (V, 2) x, y
        a, b, c, d, e, f = inverse[:6]
        columns = np.rint(a * ring[:, 0] + b * ring[:, 1] + c).astype(np.int64)  # (V,)
        rows = np.rint(d * ring[:, 0] + e * ring[:, 1] + f).astype(np.int64)  # (V,)
        top = int(rows.min())
        return self.lookup(top, int(columns[rows == top].min()))
