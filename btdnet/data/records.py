"""Plain records of referring samples, and the lazily decoded masks they point to.

Indexing a data set only builds :class:`ReferringRecord`\\ s; pixels (image and mask) are read
when an item is requested, so that an index of 17k expressions is built in a moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from btdnet.data.errors import DatasetError, Problem, ProblemLog
from btdnet.data.transforms import read_gray_array, read_image_size, resize_mask

# RefSegRS masks: foreground where the 8-bit value is above this.
REFSEGRS_MASK_THRESHOLD = 50
SPLIT_ORDER = ("train", "val", "test")


def sort_splits(names: set[str] | list[str]) -> list[str]:
    """Split names in the order train, val, test, then any others alphabetically."""
    known = [name for name in SPLIT_ORDER if name in names]
    return known + sorted(set(names) - set(SPLIT_ORDER))


def _compressed_rle_total(counts: bytes) -> int:
    """Sum of the run lengths of a compressed COCO RLE string (-1 when it is malformed).

    pycocotools decodes a malformed string into uninitialised memory instead of failing, so
    the runs are checked against the mask size before decoding. Each run is a little-endian
    sequence of 5-bit groups stored as ``chr(48 + group)``; bit 0x20 continues the number,
    bit 0x10 of the last group is the sign; from the third run on, runs are deltas to the run
    two places back.
    """
    runs: list[int] = []
    value = shift = 0
    for byte in counts:
        group = byte - 48
        if not 0 <= group < 64:
            return -1
        value |= (group & 0x1F) << shift
        shift += 5
        if group & 0x20:
            continue
        if group & 0x10:
            value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            return -1
        runs.append(value)
        value = shift = 0
    if shift:
        return -1
    return sum(runs)


@dataclass(frozen=True)
class RleMask:
    """A mask stored as one compressed COCO RLE of size (height, width): the union of its parts.

    ``file`` and ``label`` (e.g. ``"annotation 12"``) say where it came from, for messages.
    How the mask looks at the model's input size (:meth:`at_input_size`) follows the peers'
    loaders, which differ from the union in two cases:

    - ``parts`` (RRSIS-D, ``lavt_parts``): the compressed counts of each RLE part of an
      annotation that holds several. The LAVT family's ``REFER.getMask`` sums the decoded parts
      and its dataset keeps ``== 1``, so pixels where parts overlap are background there.
    - ``polygons`` (gRefCOCO format): polygon annotations in image pixel coordinates; ReLA
      scales them to the input size and rasterises them there. ``parts`` then holds the
      RLE-coded annotations of the same union (resized nearest, as detectron2 resizes them).
    """

    height: int
    width: int
    counts: bytes = field(repr=False)
    file: str
    label: str
    parts: tuple[bytes, ...] = field(default=(), repr=False)
    polygons: tuple[tuple[float, ...], ...] = field(default=(), repr=False)
    lavt_parts: bool = False

    @classmethod
    def from_segmentation(
        cls,
        segmentation: Any,
        file: str | Path,
        label: str,
        *,
        lavt_parts: bool = False,
        polygons: tuple[tuple[float, ...], ...] = (),
        polygon_parts: int = 0,
    ) -> RleMask:
        """Build from a COCO ``segmentation``: an RLE dict or a list of RLE dicts.

        Compressed (``counts`` a str or bytes) and uncompressed (``counts`` a list of ints)
        RLEs are accepted; several RLEs are merged (union) and, with ``lavt_parts`` or
        ``polygons``, also kept one by one (see the class). ``polygons`` are kept for
        :meth:`at_input_size`; the caller has rasterised them into the last ``polygon_parts``
        entries of ``segmentation`` (so only the others are kept as ``parts``). Raises
        ``ValueError`` with the reason when the segmentation is not an RLE.
        """
        parts = segmentation if isinstance(segmentation, list) else [segmentation]
        if not parts:
            raise ValueError("segmentation is an empty list")
        rles = [_compressed_rle(part) for part in parts]
        sizes = {tuple(rle["size"]) for rle in rles}
        if len(sizes) != 1:
            raise ValueError(f"segmentation parts have different sizes {sorted(sizes)}")
        rle = rles[0] if len(rles) == 1 else mask_utils.merge(rles, intersect=False)
        height, width = (int(v) for v in rle["size"])
        kept = rles[: len(rles) - polygon_parts]
        keep = (lavt_parts and len(rles) > 1) or bool(polygons)
        return cls(
            height=height,
            width=width,
            counts=bytes(rle["counts"]),
            file=str(file),
            label=label,
            parts=tuple(bytes(r["counts"]) for r in kept) if keep else (),
            polygons=tuple(polygons),
            lavt_parts=lavt_parts,
        )

    def part_masks(self) -> list[np.ndarray]:
        """The kept parts, each decoded to a bool (H, W) mask (checked first)."""
        masks = []
        for counts in self.parts:
            part = replace(self, counts=counts, parts=(), polygons=())
            masks.append(part.decode())
        return masks

    def overlapping_pixels(self) -> int:
        """Pixels covered by two or more kept parts (0 without parts)."""
        if len(self.parts) < 2:
            return 0
        return int((np.sum(self.part_masks(), axis=0) > 1).sum())

    def at_input_size(self, size: int) -> np.ndarray:
        """Bool (size, size) ground truth as the peers' loaders give it at that input size."""
        if self.polygons:
            scaled = [
                [v * (size / self.width if i % 2 == 0 else size / self.height)
                 for i, v in enumerate(polygon)]
                for polygon in self.polygons
            ]  # fmt: skip
            rles = mask_utils.frPyObjects(scaled, size, size)
            drawn = mask_utils.decode(mask_utils.merge(rles, intersect=False)) > 0
            if self.parts:
                drawn |= resize_mask(np.any(self.part_masks(), axis=0), size, size)
            return drawn
        if self.lavt_parts and len(self.parts) > 1:
            counted = np.sum([m.astype(np.uint8) for m in self.part_masks()], axis=0)
            return resize_mask(counted == 1, size, size)
        return resize_mask(self.decode(), size, size)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the mask."""
        return self.height, self.width

    def area(self) -> int:
        """Number of foreground pixels, computed from the runs without decoding."""
        return int(mask_utils.area(self._rle()))

    def is_valid(self) -> bool:
        """Whether the runs cover exactly height x width pixels (checked without decoding)."""
        return _compressed_rle_total(self.counts) == self.height * self.width

    def decode(self) -> np.ndarray:
        """Bool (H, W) mask; raises :class:`DatasetError` naming the file when malformed."""
        if not self.is_valid():
            raise DatasetError(
                f"{self.file}: {self.label}: RLE counts do not describe a "
                f"{self.height}x{self.width} mask"
            )
        decoded = mask_utils.decode(self._rle())
        if decoded.ndim == 3:  # (H, W, N) -> (H, W): union of the parts
            decoded = decoded.sum(axis=-1)
        return decoded > 0

    def _rle(self) -> dict[str, Any]:
        return {"size": [self.height, self.width], "counts": self.counts}


def check_mask_pixels(height: int, width: int, what: str) -> None:
    """``ValueError`` when a mask of ``height`` x ``width`` has more pixels than Pillow decodes
    (``Image.MAX_IMAGE_PIXELS``, the images' decompression-bomb limit): decoding it would take
    that much memory for a file that cannot hold a readable image anyway."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and height * width > limit:
        raise ValueError(
            f"{what} {height}x{width} has more pixels than the limit of {limit} (no image that "
            "large is read)"
        )


def _compressed_rle(part: Any) -> dict[str, Any]:
    """One COCO RLE dict -> a compressed RLE with bytes counts; ``ValueError`` when invalid."""
    if not isinstance(part, dict):
        kind = "polygon" if isinstance(part, list) else type(part).__name__
        raise ValueError(f"segmentation part is a {kind}, expected an RLE dict {{size, counts}}")
    size, counts = part.get("size"), part.get("counts")
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ValueError(f"RLE size {size!r} is not [height, width] of positive integers")
    height, width = int(size[0]), int(size[1])
    check_mask_pixels(height, width, "RLE size")
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError as exc:
            raise ValueError("RLE counts string is not ASCII") from exc
    if isinstance(counts, bytes):
        return {"size": [height, width], "counts": counts}
    if isinstance(counts, list) and all(isinstance(v, int) and v >= 0 for v in counts):
        if sum(counts) != height * width:
            raise ValueError(f"uncompressed RLE runs do not sum to {height}x{width}")
        return mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    raise ValueError(f"RLE counts of type {type(counts).__name__} (expected str, bytes or list)")


@dataclass(frozen=True)
class FileMask:
    """A mask stored as a single-channel image file; foreground = value > ``threshold``."""

    path: Path
    threshold: int = REFSEGRS_MASK_THRESHOLD

    @property
    def label(self) -> str:
        """How messages name this mask: its path."""
        return str(self.path)

    def decode(self) -> np.ndarray:
        """Bool (H, W) mask; raises :class:`DatasetError` naming the file when unreadable."""
        return read_gray_array(self.path) > self.threshold

    def at_input_size(self, size: int) -> np.ndarray:
        """Bool (size, size) mask, resized nearest from the file's own size."""
        return resize_mask(self.decode(), size, size)


@dataclass(frozen=True)
class EmptyMask:
    """The empty mask of a no-target expression (generalized referring), of size (H, W)."""

    height: int
    width: int
    file: str
    label: str

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    def area(self) -> int:
        return 0

    def is_valid(self) -> bool:
        return True

    def decode(self) -> np.ndarray:
        """Bool (H, W) zeros."""
        return np.zeros((self.height, self.width), dtype=bool)

    def at_input_size(self, size: int) -> np.ndarray:
        """Bool (size, size) zeros."""
        return np.zeros((size, size), dtype=bool)


MaskSource = RleMask | FileMask | EmptyMask


@dataclass(frozen=True)
class ReferringRecord:
    """One referring sample: an image, an expression and the mask of what it names.

    ``image_size`` is the (H, W) read from the image header at index time, or ``None`` when it
    was not read (or the header was unreadable: the item then fails with the cause).
    ``target_count`` is the number of referred objects (generalized referring): 1 for the
    classic sets, several for a multi-target expression (the mask is their union), 0 for a
    no-target expression (the mask is empty).
    """

    sample_id: str
    image_path: Path
    expression: str
    category: str
    category_id: int
    image_id: str
    split: str
    mask: MaskSource
    image_size: tuple[int, int] | None = None
    target_count: int = 1

    @property
    def no_target(self) -> bool:
        """The expression refers to nothing in the image."""
        return self.target_count == 0


@dataclass
class LoadStats:
    """What a loader found.

    ``splits`` lists every split the index holds (not only the one loaded).
    ``empty_masks`` / ``resized_masks`` are ``None`` when they could not be counted without
    decoding every file (``scripts/check_dataset.py`` counts everything). ``problems`` holds
    the warnings (and, for a non-strict load, the errors) met while indexing.
    """

    dataset: str
    root: str
    split: str | None
    splits: list[str] = field(default_factory=list)
    samples: int = 0
    images: int = 0
    empty_masks: int | None = None
    resized_masks: int | None = None
    problems: list[Problem] = field(default_factory=list)
    multi_target: int | None = None
    no_target: int | None = None

    def count(self, records: list[ReferringRecord]) -> None:
        """Set ``samples`` and ``images`` (distinct image files) from the loaded records."""
        self.samples = len(records)
        self.images = len({record.image_path for record in records})

    def summary(self) -> str:
        """One line for logs, e.g. ``rrsisd train: 12181 samples, 12181 images, 2 empty masks``."""
        parts = [f"{self.samples} samples", f"{self.images} images"]
        if self.empty_masks is not None:
            parts.append(f"{self.empty_masks} empty masks")
        if self.resized_masks is not None:
            parts.append(f"{self.resized_masks} masks of another size than their image")
        if self.multi_target is not None:
            parts.append(f"{self.multi_target} multi-target")
        if self.no_target is not None:
            parts.append(f"{self.no_target} no-target")
        return f"{self.dataset} {self.split or 'all splits'}: {', '.join(parts)}"


def attach_image_sizes(records: list[ReferringRecord]) -> None:
    """Give each record its image's (H, W), read from the header once per image (in place)."""
    sizes: dict[Path, tuple[int, int] | None] = {}
    for position, record in enumerate(records):
        if record.image_path not in sizes:
            sizes[record.image_path] = read_image_size(record.image_path)
        records[position] = replace(record, image_size=sizes[record.image_path])


def note_empty_masks(records: list[ReferringRecord], log: ProblemLog) -> int:
    """Log each mask of a targeted record that has no foreground pixel, once per mask (by its
    label); return how many. ``mask.area()`` must be cheap (RLE runs, empty masks)."""
    empty: set[str] = set()
    for record in records:
        mask = record.mask
        if not record.no_target and mask.label not in empty and mask.area() == 0:
            empty.add(mask.label)
            log.add(
                "empty_mask",
                mask.file,
                f"{mask.label} (image {record.image_path.name}) has no foreground pixel",
            )
    return len(empty)
