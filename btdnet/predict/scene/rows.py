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

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from btdnet.data.transforms import normalize_array
from btdnet.predict.scene.source import SceneSource
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
        temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        arrays = {
            "core_mask": self.core_mask,
            "core_probability": self.core_probability,
            "counts": np.array([self.tiles, self.nodata, self.absent], dtype=np.int64),
        }
        if self.top is not None:
            arrays["top"] = self.top
        if self.bottom is not None:
            arrays["bottom"] = self.bottom
        np.savez_compressed(temporary, **arrays)
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, folder: Path, index: int) -> RowPart:
        """Read the part of row ``index`` written by :meth:`save`."""
        with np.load(part_path(folder, index)) as data:
            tiles, nodata, absent = (int(v) for v in data["counts"])
            return cls(
                index=index,
                top=data.get("top"),
                core_mask=data["core_mask"],
                core_probability=data["core_probability"],
                bottom=data.get("bottom"),
                tiles=tiles,
                nodata=nodata,
                absent=absent,
            )


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
        on_tiles: Callable[[int], None] | None = None,
    ) -> None:
        self.predictor = predictor
        self.source = source
        self.grid = grid
        self.input_ids = input_ids
        self.attention_mask = attention_mask
        self.batch_size = batch_size
        self.on_tiles = on_tiles
        self.presence_threshold = float(getattr(predictor, "presence_threshold", 0.5))

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
        with predictor._autocast():
            output = predictor.model(pixels, ids, attention)
        probability = torch.sigmoid(output.target_logits.float())  # (B, 1, h, w)
        if probability.shape[-2:] != (tile, tile):
            probability = F.interpolate(
                probability, size=(tile, tile), mode="bilinear", align_corners=False
            )
        present = np.ones(count, dtype=bool)
        logits = getattr(output, "presence_logits", None)
        if logits is not None:  # generalized referring: the model can answer "no target"
            presence = torch.sigmoid(logits.float()).reshape(count).cpu().numpy()
            present = presence >= self.presence_threshold
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
