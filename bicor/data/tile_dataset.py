"""The closed-set dataset shared by LoveDA, Vaihingen and Potsdam: tiles in, crops or tiles out.

Items (``dict``), as the BiCoR trainer consumes them:

| key | type | meaning |
|---|---|---|
| ``pixel_values`` | float32 (3, S, S) train / (3, H, W) eval | ImageNet-normalised image |
| ``mask`` | int64 (S, S) / (H, W) | train ids, 255 = ignore |
| ``sample_id`` | str | eval: the tile id; train: ``<tile>@y<top>_x<left>_w<window>`` |

Train mode cuts augmented crops (see :mod:`bicor.data.augment`) at random places
(``crop_mode="random"``; with the augment's ``mosaic_p`` an item is first assembled from four
tiles, GeoSeg's mosaic, id ``mosaic:<a>+<b>+<c>+<d>@...``), on a regular grid
(``"sliding"``), or, as the BiCoR-Seg authors' ISPRS training set (``"squares"``, the default
with ``crops_per_tile: {patch, stride, copies}``), one item per GeoSeg square: the tile and its
flipped copies padded bottom/right to a multiple of ``patch`` (image 0, labels ignore), squares
every ``stride`` pixels, each scaled whole and then cropped (id
``<tile>#<copy>_y<top>_x<left>@...``; a mosaic is then made of four such items). With
``car_oversampling`` the training items also include GeoSeg's car zooms
(:mod:`bicor.data.car_oversampling`, id ``<tile>#car:<copy>_y.._x.._w.._<version>@...``), each
cropped like a tile; eval mode returns whole tiles (sizes vary: use batch size 1 and
sliding-window inference).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from bicor.data.augment import CropAugment, mosaic_pair, read_window
from bicor.data.car_oversampling import (
    COPIES,
    CarOversampling,
    CarPatch,
    GeoSegSquares,
    car_patch_pair,
    copy_of,
    crops_per_tile_from,
    plan_car_patches,
    square_origins,
)
from bicor.data.palettes import IGNORE_INDEX, Palette
from btdnet.normalization import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401 (re-exported)
from btdnet.normalization import normalize_array as normalise
from btdnet.tiling import window_starts

MODES = ("train", "eval")
CROP_MODES = ("random", "sliding", "squares", "whole")


@dataclass(frozen=True)
class TileRecord:
    """One image of a split: its id, files and size (read from the header)."""

    tile_id: str
    image_path: Path
    label_path: Path | None
    height: int
    width: int


@dataclass(frozen=True)
class Square:
    """One GeoSeg square: a ``size`` window at (top, left) of a copy of the tile (``COPIES``)."""

    copy: str
    top: int
    left: int
    size: int


# A training item: (tile index, sliding centre or None, car zoom or None, square or None).
PlanItem = tuple[int, "tuple[int, int] | None", "CarPatch | None", "Square | None"]


class TileReader(Protocol):
    """Reads a tile: ((H, W, 3) uint8 image, (H, W) uint8 ids or None without a label)."""

    def __call__(self, record: TileRecord) -> tuple[np.ndarray, np.ndarray | None]: ...


class TileSegmentationDataset(Dataset):
    """Crops (train) or whole tiles (eval) of one closed-set split.

    Args:
        records: the tiles of the split.
        reader: decodes a tile (may return memory maps: crops read only their window).
        palette: classes and colours of the dataset.
        dataset_name: "loveda", "vaihingen" or "potsdam".
        split: the split name, for messages.
        mode: "train" (augmented crops) or "eval" (whole tiles).
        augment: the crop recipe (required in train mode).
        crops_per_tile: random crops drawn per tile and epoch; None = as many as cover the
            tile, ``ceil(H / S) * ceil(W / S)``; a :class:`GeoSegSquares` (or its mapping) = as
            many as GeoSeg's patch script saves squares (less the car zooms of its grid).
        crop_mode: "random" places, "sliding" (a grid with ``crop_stride``), "squares" (one
            item per GeoSeg square, scaled whole then cropped; needs a :class:`GeoSegSquares`
            ``crops_per_tile``) or "whole" (``crops_per_tile`` items per tile, each the whole
            tile scaled then cropped: the authors' LoveDA items; meant for 1024 px images);
            None: "squares" with a :class:`GeoSegSquares`, else "random".
        crop_stride: grid step of sliding crops (default: ``crop_size``).
        seed: None draws each item's randomness from torch's generator (seeded per worker
            and epoch by the DataLoader); an int makes item ``i`` of epoch ``e`` reproducible.
        has_labels: False for splits without labels (LoveDA Test): masks are all ignore.
        car_oversampling: train mode: add GeoSeg's car zooms to the items (read every label once
            to draw them).
        missing: problems met while listing the split ({"kind", "file", "detail"}); warned once.
    """

    def __init__(
        self,
        records: Sequence[TileRecord],
        reader: TileReader,
        *,
        palette: Palette,
        dataset_name: str,
        split: str,
        mode: str,
        augment: CropAugment | None,
        crops_per_tile: int | GeoSegSquares | dict | None = None,
        crop_mode: str | None = None,
        crop_stride: int | None = None,
        seed: int | None = None,
        has_labels: bool = True,
        car_oversampling: CarOversampling | None = None,
        missing: Sequence[dict[str, str]] = (),
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        crops_per_tile = crops_per_tile_from(crops_per_tile)
        if crop_mode is None:
            crop_mode = "squares" if isinstance(crops_per_tile, GeoSegSquares) else "random"
        if crop_mode not in CROP_MODES:
            raise ValueError(f"crop_mode must be one of {CROP_MODES}, got {crop_mode!r}")
        if crop_mode == "squares" and not isinstance(crops_per_tile, GeoSegSquares):
            raise ValueError("crop_mode 'squares' needs crops_per_tile {patch, stride, copies}")
        if mode == "train" and augment is None:
            raise ValueError("train mode needs a CropAugment")
        if mode == "train" and not has_labels:
            raise ValueError(f"{dataset_name} {split} has no labels; it can only be used in eval")
        self.records = list(records)
        self.reader = reader
        self.palette = palette
        self.dataset_name = dataset_name
        self.split = split
        self.mode = mode
        self.augment = augment
        self.crop_mode = crop_mode
        self.seed = seed
        self.has_labels = has_labels
        self.missing = list(missing)
        self.epoch = 0
        if self.missing:
            shown = "; ".join(f"{m['kind']}: {m['file']}" for m in self.missing[:5])
            more = f" (+{len(self.missing) - 5} more)" if len(self.missing) > 5 else ""
            warnings.warn(
                f"{dataset_name} {split}: {len(self.missing)} problem(s), using the "
                f"{len(self.records)} complete tile(s): {shown}{more}",
                stacklevel=2,
            )
        self._plan: list[PlanItem] = []
        self.car_oversampling = car_oversampling if mode == "train" else None
        self._replaced: set[tuple[int, str, int, int]] = set()
        self.car_patches: list[CarPatch] = []
        if mode == "train":
            self._plan_items(crops_per_tile, crop_stride or augment.crop_size)

    def _plan_items(self, crops_per_tile: int | GeoSegSquares | None, stride: int) -> None:
        """The training items: each tile's crops, then the car zooms (drawn here, once)."""
        if self.car_oversampling is not None:
            read_mask = lambda i: self.read_tile(i)[1]  # noqa: E731
            self.car_patches = plan_car_patches(len(self.records), read_mask, self.car_oversampling)
        replaced = Counter()  # tile -> car zooms saved in place of one of its squares
        if isinstance(crops_per_tile, GeoSegSquares) and crops_per_tile.matches(
            self.car_oversampling
        ):
            zooms = [p.window for p in self.car_patches if p.transform == "none"]
            replaced.update(w.tile_index for w in zooms)
            self._replaced = {(w.tile_index, w.copy, *w.square) for w in zooms}
        for index, record in enumerate(self.records):
            if self.crop_mode == "squares":
                self._plan.extend(self._square_plan(index, record, crops_per_tile))
                continue
            self._plan.extend(
                self._tile_plan(index, record, crops_per_tile, stride, replaced[index])
            )
        self._plan += [(p.window.tile_index, None, p, None) for p in self.car_patches]

    def _square_plan(self, index: int, record: TileRecord, grid: GeoSegSquares) -> list[PlanItem]:
        """One item per GeoSeg square of the tile's copies, less those a car zoom replaced."""
        origins = square_origins(record.height, record.width, grid.patch, grid.stride)
        return [
            (index, None, None, Square(copy, top, left, grid.patch))
            for copy in COPIES[: grid.copies]
            for top, left in origins
            if (index, copy, top, left) not in self._replaced
        ]

    def _tile_plan(
        self,
        index: int,
        record: TileRecord,
        count: int | GeoSegSquares | None,
        stride: int,
        replaced: int,
    ) -> list[PlanItem]:
        size = self.augment.crop_size
        if self.crop_mode in ("random", "whole"):
            if isinstance(count, GeoSegSquares):
                count = max(0, count.count(record.height, record.width) - replaced)
            elif count is None:
                count = math.ceil(record.height / size) * math.ceil(record.width / size)
            return [(index, None, None, None)] * count
        return [
            (index, (top + size // 2, left + size // 2), None, None)
            for top in window_starts(record.height, size, stride)
            for left in window_starts(record.width, size, stride)
        ]

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in train-id order."""
        return self.palette.class_names

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return self.palette.num_classes

    @property
    def ignore_index(self) -> int:
        """Mask value of ignored pixels (255)."""
        return IGNORE_INDEX

    @property
    def tile_ids(self) -> list[str]:
        """Ids of the tiles in the split, in order."""
        return [record.tile_id for record in self.records]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch that seeded crops depend on (only used when ``seed`` is set)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._plan) if self.mode == "train" else len(self.records)

    def read_tile(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Tile ``index`` of ``records``: ((H, W, 3) uint8 image, (H, W) uint8 ids).

        Unlabelled tiles get an all-ignore mask. Arrays may be read-only memory maps.
        """
        record = self.records[index]
        image, mask = self.reader(record)
        if mask is None:
            mask = np.full(image.shape[:2], IGNORE_INDEX, dtype=np.uint8)
        return image, mask

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        return np.random.default_rng((self.seed, self.epoch, index))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        if self.mode == "eval":
            image, mask = self.read_tile(index)
            return {
                "pixel_values": normalise(np.asarray(image)),
                "mask": torch.from_numpy(np.asarray(mask).astype(np.int64)),
                "sample_id": self.records[index].tile_id,
            }
        rng = self._rng(index)
        centre = self._plan[index][1]
        image, mask, tile_id = self.item_pair(index)
        if centre is None and self.augment.mosaic_p > 0 and rng.random() < self.augment.mosaic_p:
            image, mask, tile_id = self._mosaic(index, (image, mask), rng)
        if self.crop_mode in ("squares", "whole"):
            crop_image, crop_mask, window = self.augment.scale_then_crop(image, mask, rng)
        else:
            crop_image, crop_mask, window = self.augment(image, mask, rng, centre=centre)
        return {
            "pixel_values": normalise(crop_image),
            "mask": torch.from_numpy(crop_mask.astype(np.int64)),
            "sample_id": f"{tile_id}@y{window.top}_x{window.left}_w{window.size}",
        }

    def item_pair(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        """(image, mask, id) of training item ``index`` before augmentation: the whole tile,
        its car zoom, or its GeoSeg square (padding: image 0, labels ignore)."""
        tile_index, _, car, square = self._plan[index]
        image, mask = self.read_tile(tile_index)
        tile_id = self.records[tile_index].tile_id
        if car is not None:
            image, mask = car_patch_pair(image, mask, car, self.car_oversampling.patch)
            return image, mask, f"{tile_id}#{car.name}"
        if square is not None:
            image, mask = read_window(
                copy_of(image, square.copy),
                copy_of(mask, square.copy),
                square.top,
                square.left,
                square.size,
                ignore_index=IGNORE_INDEX,
            )
            return image, mask, f"{tile_id}#{square.copy}_y{square.top}_x{square.left}"
        return image, mask, tile_id

    def _mosaic(
        self, index: int, first: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """GeoSeg's mosaic of item ``index`` and three random others: items in "squares" mode
        (the authors draw among their saved squares), whole tiles otherwise."""
        tile_index = self._plan[index][0]
        if self.crop_mode == "squares":
            others = [self.item_pair(int(i)) for i in rng.integers(0, len(self._plan), 3)]
            tiles = [first, *((image, mask) for image, mask, _ in others)]
            ids = [self.records[tile_index].tile_id, *(i for _, _, i in others)]
        else:
            picks = [int(i) for i in rng.integers(0, len(self.records), 3)]
            tiles = [first, *(self.read_tile(i) for i in picks)]
            ids = [self.records[i].tile_id for i in [tile_index, *picks]]
        image, mask = mosaic_pair(tiles, self.augment.mosaic_size, rng)
        return image, mask, "mosaic:" + "+".join(ids)
