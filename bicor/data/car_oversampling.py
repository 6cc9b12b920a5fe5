"""GeoSeg's car oversampling of ISPRS Vaihingen training patches, drawn once per data set.

GeoSeg's ``tools/vaihingen_patch_split.py`` (used unchanged by the BiCoR-Seg authors) prepares
the training set offline: each tile and its horizontally and vertically flipped copies are
padded at the bottom/right to a multiple of ``patch`` (1024) and cut into ``patch`` squares
every ``stride`` (512) pixels. For every square it draws a zoom window (albumentations'
``RandomSizedCrop``: side uniform in ``[3 * patch // 8, patch // 2]``, uniform position) resized
to ``patch``; when more than ``threshold`` (10 %) of that zoom is car, the zoom is saved four
times: as drawn, flipped vertically, flipped horizontally and rotated by k * 90 degrees (k
uniform in 0..3). Their Potsdam script disables the rule (``cf[4] > 1.0``, "no improvement").

The toolkit crops the whole tiles at random places instead of saving patches: the car zooms are
added to the training items, drawn once from ``seed`` when the training set is built (as GeoSeg
draws them once when it writes the patches) and cropped afresh every epoch like tiles.
:class:`GeoSegSquares` (``data.crops_per_tile: {patch, stride, copies}``) gives each tile as
many random crops per epoch as the script saves squares from the tile and its flipped copies,
one fewer per car zoom of the same grid (GeoSeg saves the zooms in place of their square), so
an epoch has GeoSeg's length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from bicor.data.augment import read_window, resize_pair
from bicor.data.palettes import IGNORE_INDEX

COPIES = ("none", "hflip", "vflip")  # the tile and its two flipped copies
TRANSFORMS = ("none", "vflip", "hflip", "rot90")  # car_aug's four versions of a zoom


@dataclass(frozen=True)
class CarOversampling:
    """The rule's settings (GeoSeg's Vaihingen values by default).

    Args:
        class_id: train id of the car class (ISPRS: 4).
        patch: side of GeoSeg's training squares and of each zoom once resized.
        stride: step between squares.
        threshold: a zoom is oversampled when its car share is strictly above this.
        seed: draws of the zoom windows and rotations (GeoSeg: 42).
    """

    class_id: int = 4
    patch: int = 1024
    stride: int = 512
    threshold: float = 0.1
    seed: int = 42

    def __post_init__(self) -> None:
        if self.patch < 2 or self.stride < 1:
            raise ValueError(f"car oversampling: patch >= 2 and stride >= 1, got {self}")
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"car oversampling: threshold must be in [0, 1), got {self.threshold}")

    @property
    def zoom_sides(self) -> tuple[int, int]:
        """Smallest and largest zoom side (``RandomSizedCrop(min_max_height=(3h//8, h//2))``)."""
        return 3 * self.patch // 8, self.patch // 2


@dataclass(frozen=True)
class ZoomWindow:
    """A zoom drawn in one copy of a tile: window origin and side in that copy's pixels."""

    tile_index: int
    copy: str  # one of COPIES
    top: int
    left: int
    size: int
    square: tuple[int, int] = (0, 0)  # (top, left) of the GeoSeg square it was drawn in


@dataclass(frozen=True)
class CarPatch:
    """One oversampled item: a zoom window and the version of it (``TRANSFORMS``)."""

    window: ZoomWindow
    transform: str
    rot_k: int = 0  # quarter turns of the "rot90" version

    @property
    def name(self) -> str:
        w = self.window
        extra = f"{self.rot_k}" if self.transform == "rot90" else ""
        return f"car:{w.copy}_y{w.top}_x{w.left}_w{w.size}_{self.transform}{extra}"


def copy_of(array: np.ndarray, copy: str) -> np.ndarray:
    """The tile's flipped copy (a view: memory maps stay on disk)."""
    if copy == "hflip":
        return array[:, ::-1]
    if copy == "vflip":
        return array[::-1]
    return array


def square_count(height: int, width: int, patch: int, stride: int) -> int:
    """GeoSeg's squares in one copy of a tile: the tile padded at the bottom/right to a multiple
    of ``patch``, squares every ``stride`` pixels that fit inside."""
    padded_h = math.ceil(height / patch) * patch
    padded_w = math.ceil(width / patch) * patch
    return ((padded_h - patch) // stride + 1) * ((padded_w - patch) // stride + 1)


def square_origins(height: int, width: int, patch: int, stride: int) -> list[tuple[int, int]]:
    """(top, left) of GeoSeg's squares in one copy of a tile, row by row (see
    :func:`square_count`): every ``stride`` pixels of the tile padded bottom/right to a multiple
    of ``patch``, the squares that fit inside."""
    padded_h = math.ceil(height / patch) * patch
    padded_w = math.ceil(width / patch) * patch
    return [
        (top, left)
        for top in range(0, padded_h - patch + 1, stride)
        for left in range(0, padded_w - patch + 1, stride)
    ]


@dataclass(frozen=True)
class GeoSegSquares:
    """``data.crops_per_tile`` as GeoSeg's patch script counts: ``copies`` (the tile and its
    two flipped copies) x its ``patch`` squares every ``stride`` pixels. Vaihingen 1024 / 512,
    Potsdam 1024 / 1024."""

    patch: int = 1024
    stride: int = 512
    copies: int = 3

    def __post_init__(self) -> None:
        if self.patch < 1 or self.stride < 1 or self.copies < 1:
            raise ValueError(f"crops_per_tile: patch, stride, copies must be positive, got {self}")

    def count(self, height: int, width: int) -> int:
        """Random crops of a (height, width) tile per epoch."""
        return self.copies * square_count(height, width, self.patch, self.stride)

    def matches(self, rule: CarOversampling | None) -> bool:
        """Whether ``rule`` draws its zooms on this grid (then each zoom replaces a crop)."""
        same = rule is not None and (rule.patch, rule.stride) == (self.patch, self.stride)
        return same and self.copies == len(COPIES)


def crops_per_tile_from(value: int | dict[str, Any] | None) -> int | GeoSegSquares | None:
    """``data.crops_per_tile``: None (enough 'crop_size' crops to cover the tile), a positive
    number, or a mapping of :class:`GeoSegSquares` settings."""
    if value is None or isinstance(value, GeoSegSquares):
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"patch", "stride", "copies"})
        if unknown:
            raise ValueError(
                f"crops_per_tile: unknown keys {unknown}; known: patch, stride, copies"
            )
        return GeoSegSquares(**value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"crops_per_tile must be a positive number or a mapping, got {value!r}")
    return value


def draw_zoom_windows(
    tile_index: int, height: int, width: int, settings: CarOversampling, rng: np.random.Generator
) -> Iterator[ZoomWindow]:
    """One zoom per GeoSeg square of each copy of a (height, width) tile, in GeoSeg's order."""
    padded_h = math.ceil(height / settings.patch) * settings.patch
    padded_w = math.ceil(width / settings.patch) * settings.patch
    low, high = settings.zoom_sides
    for copy in COPIES:
        for y in range(0, padded_h - settings.patch + 1, settings.stride):
            for x in range(0, padded_w - settings.patch + 1, settings.stride):
                side = int(rng.integers(low, high + 1))
                top = y + int((settings.patch - side + 1) * rng.random())
                left = x + int((settings.patch - side + 1) * rng.random())
                yield ZoomWindow(tile_index, copy, top, left, side, (y, x))


def zoom_pair(
    image: np.ndarray, mask: np.ndarray, window: ZoomWindow, patch: int
) -> tuple[np.ndarray, np.ndarray]:
    """The zoom resized to ``patch`` (image bilinear, mask nearest): ((patch, patch, 3) uint8,
    (patch, patch) uint8). Outside the tile (GeoSeg's bottom/right padding) the image is 0 and
    the mask ignored."""
    image_copy, mask_copy = copy_of(image, window.copy), copy_of(mask, window.copy)
    win_image, win_mask = read_window(
        image_copy, mask_copy, window.top, window.left, window.size, ignore_index=IGNORE_INDEX
    )
    return resize_pair(win_image, win_mask, patch)


def car_share(mask: np.ndarray, window: ZoomWindow, settings: CarOversampling) -> float:
    """Car pixels of the resized zoom over all its pixels (GeoSeg's ``cf[4]``)."""
    mask_copy = copy_of(mask, window.copy)
    no_image = np.empty((*mask_copy.shape[:2], 0), dtype=np.uint8)  # only the mask is read
    _, win_mask = read_window(
        no_image, mask_copy, window.top, window.left, window.size, ignore_index=IGNORE_INDEX
    )
    size = (settings.patch, settings.patch)
    zoom = np.asarray(Image.fromarray(win_mask).resize(size, Image.NEAREST))
    return float((zoom == settings.class_id).sum()) / zoom.size


def plan_car_patches(
    num_tiles: int, read_mask: Callable[[int], np.ndarray], settings: CarOversampling
) -> list[CarPatch]:
    """The oversampled items of a training set: four per zoom with a car share above the
    threshold. ``read_mask(i)``: tile ``i``'s (H, W) uint8 train ids (255 ignored)."""
    rng = np.random.default_rng(settings.seed)
    patches: list[CarPatch] = []
    for index in range(num_tiles):
        mask = read_mask(index)
        for window in draw_zoom_windows(index, *mask.shape[:2], settings, rng):
            if car_share(mask, window, settings) > settings.threshold:
                rot_k = int(rng.integers(0, 4))
                patches += [CarPatch(window, t, rot_k if t == "rot90" else 0) for t in TRANSFORMS]
    return patches


def car_patch_pair(
    image: np.ndarray, mask: np.ndarray, patch: CarPatch, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """The item's (side, side, 3) image and (side, side) mask: the zoom, then its version."""
    zoom_image, zoom_mask = zoom_pair(image, mask, patch.window, side)
    pair = [zoom_image, zoom_mask]
    if patch.transform == "vflip":
        pair = [a[::-1] for a in pair]
    elif patch.transform == "hflip":
        pair = [a[:, ::-1] for a in pair]
    elif patch.transform == "rot90":
        pair = [np.rot90(a, k=patch.rot_k, axes=(0, 1)) for a in pair]
    return np.ascontiguousarray(pair[0]), np.ascontiguousarray(pair[1])


SETTING_KEYS = ("patch", "stride", "threshold", "seed")


def car_oversampling_from(
    value: bool | dict[str, Any] | None, class_names: Sequence[str]
) -> CarOversampling | None:
    """``data.car_oversampling``: false/None (off), true (GeoSeg's Vaihingen values) or a
    mapping overriding some of ``patch``, ``stride``, ``threshold``, ``seed``. The car class is
    found by name in ``class_names``; a data set without one is refused."""
    if value is None or value is False:
        return None
    if "car" not in class_names:
        raise ValueError("car_oversampling: this data set has no 'car' class (ISPRS only)")
    options: dict[str, Any] = {}
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(SETTING_KEYS))
        if unknown:
            raise ValueError(f"car_oversampling: unknown keys {unknown}; known: {SETTING_KEYS}")
        options = dict(value)
    elif value is not True:
        raise ValueError(f"car_oversampling: true, false or a mapping, got {value!r}")
    return CarOversampling(class_id=list(class_names).index("car"), **options)
