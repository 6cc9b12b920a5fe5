"""One row of tiles of a scene: batched forward passes, blending inside the row, and the row's
part file (the unit of resumption and of the split across processes).

A row part holds, for the full scene width:

- ``top``: float32 (O, W), the row's weighted probability on the O pixel rows it shares with
  the row above (absent for the first row);
- ``core_mask`` / ``core_probability``: bool and uint8 (probability x 255, rounded) of the
  rows only this row covers: they are final;
- ``bottom``: float32 (O, W), weighted probability on the rows shared with the row below.

The rows of a scene are independent of one another; the final map over a shared band is
``bottom(r) + top(r + 1)`` (the weights sum to one): :class:`btdnet.tiling.RowBlend` blends
and splits a row, :func:`btdnet.tiling.stitch` joins them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from btdnet.normalization import normalize_array
from btdnet.presence import output_present
from btdnet.raster.source import SceneSource
from btdnet.safe_write import atomic_output
from btdnet.tiling import RowBlend, TileGrid


@dataclass
class RowPart:
    """The finished output of one row of tiles (see the module docstring).

    Attributes:
        tiles: tiles in the row; ``nodata``: tiles with no valid pixel (not run);
        ``absent``: tiles the presence score answered "no target" for (probability 0).
    """

    index: int
    top: np.ndarray | None  # float32 (O, W)
    core_mask: np.ndarray  # bool (h, W)
    core_probability: np.ndarray  # uint8 (h, W)
    bottom: np.ndarray | None  # float32 (O, W)
    tiles: int
    nodata: int
    absent: int

    def save(self, folder: Path) -> Path:
        """Write ``row_<index>.npz`` atomically (a temporary file renamed into place)."""
        path = part_path(folder, self.index)
        arrays = {
            "core_mask": self.core_mask,
            "core_probability": self.core_probability,
            "counts": np.array([self.tiles, self.nodata, self.absent], dtype=np.int64),
        }
        if self.top is not None:
            arrays["top"] = self.top
        if self.bottom is not None:
            arrays["bottom"] = self.bottom
        with atomic_output(path) as temporary:  # a link planted at the part is refused
            np.savez_compressed(temporary, **arrays)
        return path

    @classmethod
    def load(cls, folder: Path, index: int, grid: TileGrid) -> RowPart:
        """Read the part of row ``index`` written by :meth:`save`, checked against ``grid``.

        Raises:
            PartError: the part is a link, unreadable, or its arrays do not fit the grid.
        """
        path = part_path(folder, index)
        if path.is_symlink() or not path.is_file():
            raise PartError(f"{path}: not a regular file (a link?); run without --resume")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except Exception as exc:  # OSError, BadZipFile, a pickled member (ValueError), ...
            raise PartError(f"{path}: unreadable part ({type(exc).__name__}: {exc})") from exc
        check_part_arrays(path, arrays, expected_arrays(grid, index))
        tiles, nodata, absent = (int(v) for v in arrays["counts"])
        if tiles != grid.columns.count:
            raise PartError(f"{path}: counts {tiles} tiles, the row has {grid.columns.count}")
        return cls(
            index=index,
            top=arrays.get("top"),
            core_mask=arrays["core_mask"],
            core_probability=arrays["core_probability"],
            bottom=arrays.get("bottom"),
            tiles=tiles,
            nodata=nodata,
            absent=absent,
        )


class PartError(ValueError):
    """A row part that cannot be reused: a link, unreadable, or not of this grid's shape."""


def expected_arrays(grid: TileGrid, index: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """(shape, dtype) of every array the part of row ``index`` must hold."""
    rows, width = grid.rows, grid.width
    y0, y1 = rows.extent(index)
    first, last = index == 0, index == rows.count - 1
    core = (y1 - y0 if last else rows.stride) - (0 if first else rows.overlap)
    expected = {
        "core_mask": ((core, width), "bool"),
        "core_probability": ((core, width), "uint8"),
        "counts": ((3,), "int64"),
    }
    if not first:
        expected["top"] = ((rows.overlap, width), "float32")
    if not last:
        expected["bottom"] = ((y1 - y0 - rows.stride, width), "float32")
    return expected


def check_part_arrays(
    path: Path, arrays: dict[str, np.ndarray], expected: dict[str, tuple[tuple[int, ...], str]]
) -> None:
    """Raise :class:`PartError` unless ``arrays`` hold exactly the ``expected`` arrays."""
    if set(arrays) != set(expected):
        raise PartError(
            f"{path}: holds {sorted(arrays)}, expected {sorted(expected)}; run without --resume"
        )
    for key, (shape, dtype) in expected.items():
        array = arrays[key]
        if array.shape != shape or array.dtype != np.dtype(dtype):
            raise PartError(
                f"{path}: {key} is {array.dtype}{list(array.shape)}, expected {dtype}"
                f"{list(shape)}; run without --resume"
            )
    counts = arrays["counts"]
    if (counts < 0).any() or counts[1] + counts[2] > counts[0]:
        raise PartError(f"{path}: impossible tile counts {counts.tolist()}; run without --resume")
    for key in ("top", "bottom"):
        if key in arrays and not np.isfinite(arrays[key]).all():
            raise PartError(f"{path}: {key} holds non-finite values; run without --resume")


def part_path(folder: Path, index: int) -> Path:
    """Where the part of row ``index`` lives."""
    return folder / f"row_{index:06d}.npz"


def to_uint8_probability(probability: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 0..255 (rounded)."""
    return np.round(np.clip(probability, 0.0, 1.0) * 255.0).astype(np.uint8)


class RowRunner:
    """Runs the rows of one scene for one prompt.

    Args:
        predictor: a :class:`~btdnet.predict.predictor.Predictor` (model, device, autocast).
        source: the open scene.
        grid: its tiles.
        input_ids, attention_mask: (1, T) tokens of the prompt.
        batch_size: tiles per forward pass.
        presence_threshold: tiles whose presence probability is below it are "no target"
            (:func:`btdnet.presence.output_present`).
        on_tiles: called with the number of tiles finished after every batch.
    """

    def __init__(
        self,
        predictor: object,
        source: SceneSource,
        grid: TileGrid,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        batch_size: int,
        presence_threshold: float,
        on_tiles: Callable[[int], None] | None = None,
    ) -> None:
        self.predictor = predictor
        self.source = source
        self.grid = grid
        self.input_ids = input_ids
        self.attention_mask = attention_mask
        self.batch_size = batch_size
        self.on_tiles = on_tiles
        self.presence_threshold = float(presence_threshold)

    @torch.inference_mode()
    def forward(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (B, T, T, 3) tiles -> float32 (B, T, T) probabilities and bool (B,) present.

        Tiles of another size than the model's input are resized to it (bilinear, as
        training does) and their probabilities brought back (bilinear). Until the model has
        a presence score, every tile is present.
        """
        predictor = self.predictor
        side, tile = predictor.input_side, tiles.shape[1]
        images = [
            t if tile == side else np.asarray(Image.fromarray(t).resize((side, side), 2))
            for t in tiles
        ]
        pixels = torch.stack([normalize_array(image) for image in images]).to(predictor.device)
        count = pixels.shape[0]  # (B, 3, S, S)
        ids = self.input_ids.to(predictor.device).expand(count, -1)  # (B, T)
        attention = self.attention_mask.to(predictor.device).expand(count, -1)  # (B, T)
        with predictor.autocast():
            output = predictor.model(pixels, ids, attention)
        probability = torch.sigmoid(output.target_logits.float())  # (B, 1, h, w)
        if probability.shape[-2:] != (tile, tile):
            probability = F.interpolate(
                probability, size=(tile, tile), mode="bilinear", align_corners=False
            )
        present = output_present(output, self.presence_threshold).cpu().numpy()  # (B,)
        return probability[:, 0].clamp_(0.0, 1.0).cpu().numpy(), present

    def run(self, index: int) -> RowPart:
        """Compute row ``index``: every tile of it, blended along x, split along y."""
        columns = self.grid.columns
        y0 = self.grid.rows.start(index)
        tile = self.grid.tile
        blend = RowBlend(self.grid, index)  # (1, h, W)
        nodata = absent = 0
        for first in range(0, columns.count, self.batch_size):
            batch = list(range(first, min(first + self.batch_size, columns.count)))
            reads = [self.source.read(y0, columns.start(j), tile) for j in batch]
            kept = [k for k, (_, valid) in enumerate(reads) if valid.any()]
            nodata += len(batch) - len(kept)
            if kept:
                probability, present = self.forward(np.stack([reads[k][0] for k in kept]))
                for slot, k in enumerate(kept):
                    if not present[slot]:
                        absent += 1
                        continue
                    blend.add(batch[k], (probability[slot] * reads[k][1])[None])
            if self.on_tiles is not None:
                self.on_tiles(len(batch))
        split = blend.split()
        core = split.core[0]
        return RowPart(
            index=index,
            top=None if split.top is None else split.top[0],
            core_mask=core > 0.5,
            core_probability=to_uint8_probability(core),
            bottom=None if split.bottom is None else split.bottom[0],
            tiles=columns.count,
            nodata=nodata,
            absent=absent,
        )
