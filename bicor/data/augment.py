"""Training augmentations of the closed-set recipes on (image, mask) pairs.

Recipe (GeoSeg / BiCoR-Seg): random scale from {0.75, 1, 1.25, 1.5} (image bicubic, mask
nearest, as the authors' ``RandomScale``), random crop to
``crop_size`` (padding with 0 pixels / ignore labels where the scaled image is smaller) that
GeoSeg's ``SmartCropV1`` redraws (up to 10 times) while one class covers ``smart_crop_ratio``
or more of the labelled pixels, horizontal and vertical flips (p 0.5 each), and with
probability ``rot90_p`` a rotation by k * 90 degrees, k uniform in {0, 1, 2, 3} (albumentations'
``RandomRotate90(p)``; the authors use p 0.5, 0.25 for Potsdam).

Scaling a 6000x6000 tile before cropping would resample all of it for one crop, so
:class:`CropAugment` does the same thing the cheap way round: for scale ``s`` it reads a
window of ``round(crop_size / s)`` pixels from the tile (a memory map is fine) and resizes
only that window to ``crop_size`` (``__call__``, for whole tiles). The ISPRS recipe's items
are already 1024 squares (GeoSeg's padded-grid squares, car zooms, mosaics), which the authors
scale whole and then crop: :meth:`CropAugment.scale_then_crop` does exactly that. Images are
(H, W, 3) uint8, masks (H, W) uint8 ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from bicor.data.palettes import IGNORE_INDEX

DEFAULT_SCALES = (0.75, 1.0, 1.25, 1.5)


def read_window(
    image: np.ndarray,
    mask: np.ndarray | None,
    top: int,
    left: int,
    size: int,
    *,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Copy the ``size`` x ``size`` window at (top, left) out of an image and its mask.

    The window may reach outside the tile (negative or too large offsets): those pixels are
    0 in the image and ``ignore_index`` in the mask. Only the window is read, so memory-mapped
    tiles stay on disk. Returns ((size, size, 3) uint8, (size, size) uint8 or None).
    """
    height, width = image.shape[:2]
    out_image = np.zeros((size, size, image.shape[2]), dtype=np.uint8)
    out_mask = None if mask is None else np.full((size, size), ignore_index, dtype=np.uint8)
    y0, y1 = max(top, 0), min(top + size, height)
    x0, x1 = max(left, 0), min(left + size, width)
    if y1 > y0 and x1 > x0:
        out_image[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
        if out_mask is not None:
            out_mask[y0 - top : y1 - top, x0 - left : x1 - left] = mask[y0:y1, x0:x1]
    return out_image, out_mask


IMAGE_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def resize_pair(
    image: np.ndarray, mask: np.ndarray | None, size: int, *, image_filter: str = "bilinear"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize a square pair to ``size``: the image with PIL's ``image_filter`` ("bilinear" or
    "bicubic"), the mask nearest (ids never blend)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image, mask
    resample = IMAGE_FILTERS[image_filter]
    out_image = np.asarray(Image.fromarray(image).resize((size, size), resample))
    out_mask = None
    if mask is not None:
        out_mask = np.asarray(Image.fromarray(mask).resize((size, size), Image.NEAREST))
    return out_image, out_mask


def random_window_origin(
    height: int, width: int, size: int, rng: np.random.Generator
) -> tuple[int, int]:
    """Uniform (top, left) of a ``size`` window over a (height, width) tile.

    When the tile is smaller than the window along an axis, the offset is drawn from
    ``[dim - size, 0]``: the tile lands at a random place inside the padded window.
    """
    top = int(rng.integers(min(0, height - size), max(0, height - size) + 1))
    left = int(rng.integers(min(0, width - size), max(0, width - size) + 1))
    return top, left


def flip_rotate(
    image: np.ndarray,
    mask: np.ndarray | None,
    rng: np.random.Generator,
    *,
    flips: bool = True,
    rot90: bool = True,
    rot90_p: float = 1.0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Random horizontal flip, vertical flip (p = 0.5 each) and, with probability ``rot90_p``,
    rotation by k * 90 degrees (k uniform in 0..3).

    The same transform is applied to image and mask; the random draws happen in a fixed
    order (horizontal, vertical, k, then the rotation's coin when ``rot90_p < 1``) whatever is
    enabled, so seeds stay comparable.
    """
    horizontal, vertical = rng.random() < 0.5, rng.random() < 0.5
    k = int(rng.integers(0, 4))
    if rot90_p < 1.0 and rng.random() >= rot90_p:
        k = 0
    pair = [image, mask]
    for axis, enabled in ((1, flips and horizontal), (0, flips and vertical)):
        if enabled:
            pair = [None if a is None else np.flip(a, axis=axis) for a in pair]
    if rot90 and k:
        pair = [None if a is None else np.rot90(a, k=k, axes=(0, 1)) for a in pair]
    out_image = np.ascontiguousarray(pair[0])
    out_mask = None if pair[1] is None else np.ascontiguousarray(pair[1])
    return out_image, out_mask


def mosaic_pair(
    tiles: list[tuple[np.ndarray, np.ndarray]],
    size: int,
    rng: np.random.Generator,
    *,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[np.ndarray, np.ndarray]:
    """GeoSeg's mosaic: a ``size`` square split at a random point (each coordinate uniform in
    ``[size // 4, size - size // 4]``) into four quadrants, each a random window of one tile.

    ``tiles``: four ((H, W, 3) uint8, (H, W) uint8) pairs, top-left, top-right, bottom-left,
    bottom-right. Returns ((size, size, 3) uint8, (size, size) uint8).
    """
    if len(tiles) != 4:
        raise ValueError(f"a mosaic needs four tiles, got {len(tiles)}")
    quarter = size // 4
    split_x = int(rng.integers(quarter, size - quarter + 1))
    split_y = int(rng.integers(quarter, size - quarter + 1))
    boxes = [
        (0, 0, split_y, split_x),
        (0, split_x, split_y, size - split_x),
        (split_y, 0, size - split_y, split_x),
        (split_y, split_x, size - split_y, size - split_x),
    ]
    out_image = np.zeros((size, size, 3), dtype=np.uint8)
    out_mask = np.full((size, size), ignore_index, dtype=np.uint8)
    for (image, mask), (y, x, h, w) in zip(tiles, boxes):
        if h == 0 or w == 0:
            continue
        top = int(rng.integers(0, max(0, image.shape[0] - h) + 1))
        left = int(rng.integers(0, max(0, image.shape[1] - w) + 1))
        side = max(h, w)
        window_image, window_mask = read_window(
            image, mask, top, left, side, ignore_index=ignore_index
        )
        out_image[y : y + h, x : x + w] = window_image[:h, :w]
        out_mask[y : y + h, x : x + w] = window_mask[:h, :w]
    return out_image, out_mask


SMART_CROP_RETRIES = 10  # SmartCropV1 stops after its 11th draw


def balanced(
    mask: np.ndarray, top: int, left: int, size: int, max_ratio: float, ignore_index: int
) -> bool:
    """SmartCropV1's test on a window: two or more labelled classes, none covering
    ``max_ratio`` or more of the labelled pixels (padding counts as ignored)."""
    y0, y1 = max(top, 0), min(top + size, mask.shape[0])
    x0, x1 = max(left, 0), min(left + size, mask.shape[1])
    window = np.asarray(mask[y0:y1, x0:x1])
    counts = np.bincount(window.ravel(), minlength=256)
    counts[ignore_index] = 0
    counts = counts[counts > 0]
    return len(counts) > 1 and counts.max() / counts.sum() < max_ratio


@dataclass(frozen=True)
class CropWindow:
    """Where a training crop came from: window origin and side in tile pixels, and the scale."""

    top: int
    left: int
    size: int
    scale: float


@dataclass(frozen=True)
class CropAugment:
    """Random scale + crop (+ flips, rot90) of a tile into a ``crop_size`` square pair.

    Args:
        crop_size: side of the output crop in pixels.
        scales: scale factors drawn uniformly; scale ``s`` shows ``crop_size / s`` tile pixels.
        flips: random horizontal and vertical flips.
        rot90: random rotation by k * 90 degrees.
        rot90_p: probability of drawing that rotation (1: always, k may still be 0).
        smart_crop_ratio: redraw a random window (up to ``SMART_CROP_RETRIES`` times) while it
            holds fewer than two labelled classes or one covers this share or more; None keeps
            the first window.
        mosaic_p: probability that a training item is first assembled as a GeoSeg mosaic of
            four tiles (see :func:`mosaic_pair`; the dataset reads the tiles).
        mosaic_size: side of that mosaic (the authors' 1024-pixel tiles).
        ignore_index: mask value of padding.
        image_filter: how the scale resamples the image, "bicubic" (the authors'
            ``RandomScale``: PIL bicubic) or "bilinear"; the mask is always nearest.
    """

    crop_size: int
    scales: tuple[float, ...] = DEFAULT_SCALES
    flips: bool = True
    rot90: bool = True
    rot90_p: float = 1.0
    smart_crop_ratio: float | None = None
    mosaic_p: float = 0.0
    mosaic_size: int = 1024
    ignore_index: int = IGNORE_INDEX
    image_filter: str = "bicubic"

    def __post_init__(self) -> None:
        if self.image_filter not in IMAGE_FILTERS:
            raise ValueError(
                f"image_filter must be one of {sorted(IMAGE_FILTERS)}, got {self.image_filter!r}"
            )
        if not 0.0 <= self.mosaic_p <= 1.0 or self.mosaic_size < 2:
            raise ValueError(
                f"mosaic_p must be in [0, 1] and mosaic_size >= 2, got {self.mosaic_p}, "
                f"{self.mosaic_size}"
            )
        if not 0.0 <= self.rot90_p <= 1.0:
            raise ValueError(f"rot90_p must be in [0, 1], got {self.rot90_p}")
        if self.smart_crop_ratio is not None and not 0.0 < self.smart_crop_ratio <= 1.0:
            raise ValueError(f"smart_crop_ratio must be in (0, 1], got {self.smart_crop_ratio}")
        if self.crop_size < 1:
            raise ValueError(f"crop_size must be positive, got {self.crop_size}")
        if not self.scales or any(s <= 0 for s in self.scales):
            raise ValueError(f"scales must be positive numbers, got {self.scales}")

    def _smart_origin(
        self, mask: np.ndarray | None, height: int, width: int, size: int, rng: np.random.Generator
    ) -> tuple[int, int]:
        """A random window origin, redrawn while the window is dominated by one class."""
        top, left = random_window_origin(height, width, size, rng)
        if mask is None or self.smart_crop_ratio is None:
            return top, left
        for _ in range(SMART_CROP_RETRIES):
            if balanced(mask, top, left, size, self.smart_crop_ratio, self.ignore_index):
                break
            top, left = random_window_origin(height, width, size, rng)
        return top, left

    def window_size(self, scale: float) -> int:
        """Tile pixels covered by a crop at ``scale``."""
        return max(1, round(self.crop_size / scale))

    def __call__(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        rng: np.random.Generator,
        *,
        centre: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None, CropWindow]:
        """One augmented crop of a tile.

        Args:
            image: (H, W, 3) uint8 tile (array or memory map).
            mask: (H, W) uint8 ids, or None for unlabelled tiles.
            rng: source of every random draw.
            centre: (y, x) the window is centred on (sliding crops); random when None.

        Returns:
            ((S, S, 3) uint8 image, (S, S) uint8 mask or None, the :class:`CropWindow`).
        """
        scale = float(self.scales[int(rng.integers(0, len(self.scales)))])
        size = self.window_size(scale)
        height, width = image.shape[:2]
        if centre is None:
            top, left = self._smart_origin(mask, height, width, size, rng)
        else:
            top, left = centre[0] - size // 2, centre[1] - size // 2
        window_image, window_mask = read_window(
            image, mask, top, left, size, ignore_index=self.ignore_index
        )
        crop_image, crop_mask = resize_pair(
            window_image, window_mask, self.crop_size, image_filter=self.image_filter
        )
        crop_image, crop_mask = flip_rotate(
            crop_image, crop_mask, rng, flips=self.flips, rot90=self.rot90, rot90_p=self.rot90_p
        )
        return crop_image, crop_mask, CropWindow(top, left, size, scale)

    def scale_then_crop(
        self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, CropWindow]:
        """The authors' order on one prepared square (a 1024 square of a padded tile, a car
        zoom or a mosaic): scale the whole square (``int(scale * side)``, image with
        ``image_filter``, mask nearest), cut a ``crop_size`` window at a uniform origin of the
        scaled square (redrawn as SmartCropV1 does), then flips and rot90.

        ``image``: (H, W, 3) uint8, ``mask``: (H, W) uint8. Returns the crop pair and its
        :class:`CropWindow` in the square's own pixels (origin and side divided by the scale).
        """
        scale = float(self.scales[int(rng.integers(0, len(self.scales)))])
        height, width = (int(scale * side) for side in image.shape[:2])
        resample = IMAGE_FILTERS[self.image_filter]
        image = np.asarray(Image.fromarray(image).resize((width, height), resample))
        mask = np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST))
        top, left = self._smart_origin(mask, height, width, self.crop_size, rng)
        crop_image, crop_mask = read_window(
            image, mask, top, left, self.crop_size, ignore_index=self.ignore_index
        )
        crop_image, crop_mask = flip_rotate(
            crop_image, crop_mask, rng, flips=self.flips, rot90=self.rot90, rot90_p=self.rot90_p
        )
        window = CropWindow(int(top / scale), int(left / scale), self.window_size(scale), scale)
        return crop_image, crop_mask, window
