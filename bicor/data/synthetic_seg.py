"""A synthetic closed-set land-cover set, for the demo and the tests.

Each image is a tiling of Voronoi regions with noisy (warped) boundaries, filled with per-class
textures, crossed by roads (bands) and dotted with buildings (rectangles with a shadow); some
images have a black no-data strip that the mask marks as ignore (255), as in LoveDA.

Classes (ids): 0 background, 1 building, 2 road, 3 water, 4 forest, 5 agriculture.

On-disk layout (written by ``scripts/make_synthetic_seg.py``)::

    <root>/classes.json            {"classes": [...], "palette": [[r, g, b], ...],
                                    "ignore_index": 255, "image_size": S, "seed": s,
                                    "splits": {"train": n, "val": m}}
    <root>/<split>/images/<id>.png RGB, S x S
    <root>/<split>/masks/<id>.png  8-bit single channel: class ids, 255 = no data

``<id>`` is ``<split>_<index:05d>``. Generation is deterministic: image ``i`` of a split depends
only on (seed, split, i).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from bicor.data.errors import ClosedSetDataError
from btdnet.normalization import normalize_array as normalize_image
from btdnet.safe_write import atomic_output, write_text_atomic

CLASSES: tuple[str, ...] = ("background", "building", "road", "water", "forest", "agriculture")
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255),
    (255, 0, 0),
    (255, 255, 0),
    (0, 0, 255),
    (0, 160, 0),
    (255, 195, 128),
)
IGNORE_INDEX = 255
SPLITS: tuple[str, ...] = ("train", "val")

BACKGROUND, BUILDING, ROAD, WATER, FOREST, AGRICULTURE = range(6)
REGION_CLASSES = np.array([BACKGROUND, FOREST, AGRICULTURE, WATER])
REGION_PROBS = np.array([0.33, 0.25, 0.26, 0.16])
ROOF_COLOURS = np.array(
    [[0.62, 0.30, 0.25], [0.70, 0.70, 0.72], [0.45, 0.47, 0.52], [0.85, 0.82, 0.78]],
    dtype=np.float32,
)


def _seed_for(seed: int, split: str, index: int) -> int:
    return zlib.crc32(f"{seed}/{split}/{index}".encode())


def _smooth_noise(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
    """Value noise in [-1, 1]: a random grid of ``size / cell`` points, bilinearly up-sampled."""
    grid = max(2, size // cell + 2)
    coarse = rng.uniform(-1.0, 1.0, (grid, grid)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def _region_labels(rng: np.random.Generator, size: int) -> np.ndarray:
    """(S, S) class ids from warped Voronoi cells of the region classes."""
    count = int(rng.integers(5, 11))
    seeds = rng.uniform(0, size, (count, 2))
    classes = rng.choice(REGION_CLASSES, size=count, p=REGION_PROBS)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    warp = size / 12.0
    ys = ys + warp * _smooth_noise(rng, size, max(4, size // 6))
    xs = xs + warp * _smooth_noise(rng, size, max(4, size // 6))
    dist = (ys[None] - seeds[:, 0, None, None]) ** 2 + (xs[None] - seeds[:, 1, None, None]) ** 2
    return classes[dist.argmin(axis=0)].astype(np.uint8)  # (S, S)


def _texture(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """(S, S, 3) float image in [0, 1] filled with each region class's texture."""
    size = labels.shape[0]
    image = np.zeros((size, size, 3), dtype=np.float32)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)

    base = np.array([0.56, 0.52, 0.47], dtype=np.float32) + rng.normal(0, 0.03, 3)
    noise = 0.08 * _smooth_noise(rng, size, 6) + 0.04 * rng.normal(size=(size, size))
    background = base[None, None] + noise[..., None]

    crowns = _smooth_noise(rng, size, 3) + 0.6 * _smooth_noise(rng, size, 8)
    forest_base = np.array([0.16, 0.33, 0.17], dtype=np.float32) + rng.normal(0, 0.02, 3)
    forest = forest_base[None, None] * (1.0 + 0.45 * crowns[..., None])

    water_base = np.array([0.14, 0.24, 0.38], dtype=np.float32) + rng.normal(0, 0.02, 3)
    waves = 0.03 * _smooth_noise(rng, size, 16) + 0.01 * rng.normal(size=(size, size))
    water = water_base[None, None] + waves[..., None]

    # agriculture: striped fields, orientation and colour vary per Voronoi-like field patch
    agriculture = np.zeros_like(image)
    patches = (_smooth_noise(rng, size, max(8, size // 4)) > 0).astype(np.int64)
    for patch in (0, 1):
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(4.0, 9.0) * size / 256.0 + 2.0
        phase = (xs * np.cos(angle) + ys * np.sin(angle)) * (2 * np.pi / period)
        stripes = 0.5 + 0.5 * np.sin(phase)
        colour = np.array(
            [rng.uniform(0.45, 0.7), rng.uniform(0.5, 0.68), rng.uniform(0.25, 0.4)],
            dtype=np.float32,
        )
        field = colour[None, None] * (0.85 + 0.25 * stripes[..., None])
        agriculture = np.where((patches == patch)[..., None], field, agriculture)

    for cls, fill in (
        (BACKGROUND, background),
        (FOREST, forest),
        (WATER, water),
        (AGRICULTURE, agriculture),
    ):
        image = np.where((labels == cls)[..., None], fill, image)
    return image


def _draw_roads(rng: np.random.Generator, image: np.ndarray, labels: np.ndarray) -> None:
    size = labels.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        angle = rng.uniform(0, np.pi)
        normal = (np.cos(angle), np.sin(angle))
        offset = rng.uniform(0.2, 0.8) * size
        signed = (xs - size / 2) * normal[0] + (ys - size / 2) * normal[1] + size / 2 - offset
        half_width = rng.uniform(2.5, 5.5) * size / 128.0
        band = np.abs(signed) <= half_width
        shade = rng.uniform(0.3, 0.42)
        road = shade + 0.02 * rng.normal(size=(size, size))
        image[band] = np.stack([road, road, road * 1.03], axis=-1)[band]
        centre = np.abs(signed) <= max(0.6, half_width * 0.12)
        along = (xs * normal[1] - ys * normal[0]) % 12.0 < 6.0
        image[centre & along & band] = 0.85
        labels[band] = ROAD


def _draw_buildings(rng: np.random.Generator, image: np.ndarray, labels: np.ndarray) -> None:
    size = labels.shape[0]
    scale = size / 128.0
    for _ in range(int(rng.integers(4, 14))):
        h = int(rng.uniform(7, 18) * scale)
        w = int(rng.uniform(7, 18) * scale)
        y = int(rng.integers(0, size - h))
        x = int(rng.integers(0, size - w))
        if np.isin(labels[y : y + h, x : x + w], (WATER, ROAD, BUILDING)).mean() > 0.1:
            continue
        shadow = max(1, round(2 * scale))
        sy, sx = min(size, y + h + shadow), min(size, x + w + shadow)
        image[y + shadow : sy, x + shadow : sx] *= 0.55  # shadow falls on the ground
        roof = ROOF_COLOURS[rng.integers(len(ROOF_COLOURS))] + rng.normal(0, 0.03, 3)
        ridge = rng.random() < 0.5
        block = np.broadcast_to(roof, (h, w, 3)).copy()
        if ridge:  # gabled roof: one half darker
            block[: h // 2] *= 0.85
        image[y : y + h, x : x + w] = block + 0.015 * rng.normal(size=(h, w, 3))
        labels[y : y + h, x : x + w] = BUILDING


def _soften(image: np.ndarray) -> np.ndarray:
    """3x3 box blur: mixed pixels along every boundary, as a sensor would give."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    out = np.zeros_like(image)
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
    return out / 9.0


def generate_sample(seed: int, split: str, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (image (S, S, 3) uint8, mask (S, S) uint8) pair; deterministic in its arguments."""
    rng = np.random.default_rng(_seed_for(seed, split, index))
    labels = _region_labels(rng, size)
    image = _texture(rng, labels)
    _draw_roads(rng, image, labels)
    _draw_buildings(rng, image, labels)
    image = _soften(image) * rng.uniform(0.9, 1.1)
    image = np.clip(image, 0.0, 1.0)
    if rng.random() < 0.2:  # no-data strip along one edge
        width = int(rng.uniform(0.05, 0.2) * size)
        side = int(rng.integers(4))
        region = [
            (slice(0, width), slice(None)),
            (slice(size - width, size), slice(None)),
            (slice(None), slice(0, width)),
            (slice(None), slice(size - width, size)),
        ][side]
        image[region] = 0.0
        labels[region] = IGNORE_INDEX
    return (image * 255.0 + 0.5).astype(np.uint8), labels


def write_synthetic_seg(
    root: str | Path, *, train: int = 200, val: int = 40, size: int = 128, seed: int = 0
) -> Path:
    """Write the set under ``root`` (see the module docstring); returns ``root``."""
    root = Path(root)
    if size < 32:
        raise ValueError(f"size must be >= 32, got {size}")
    counts = {"train": train, "val": val}
    for split, count in counts.items():
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, mask = generate_sample(seed, split, index, size)
            sample_id = f"{split}_{index:05d}"
            with atomic_output(root / split / "images" / f"{sample_id}.png") as tmp:
                Image.fromarray(image, mode="RGB").save(tmp, format="PNG")
            with atomic_output(root / split / "masks" / f"{sample_id}.png") as tmp:
                Image.fromarray(mask, mode="L").save(tmp, format="PNG")
    meta = {
        "classes": list(CLASSES),
        "palette": [list(c) for c in PALETTE],
        "ignore_index": IGNORE_INDEX,
        "image_size": size,
        "seed": seed,
        "splits": counts,
    }
    write_text_atomic(root / "classes.json", json.dumps(meta, indent=2) + "\n")
    return root


Transform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def read_png(path: Path) -> Image.Image:
    """Decode ``path`` fully; any failure (broken file, decompression bomb) is one
    :class:`ClosedSetDataError` naming it."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).split(", could be")[0]
        if isinstance(exc, UnidentifiedImageError):
            reason = "empty or not an image Pillow can decode"
        raise ClosedSetDataError(f"{path}: cannot read the image ({reason})") from exc


class SyntheticSegDataset(Dataset):
    """The synthetic set of one split.

    Args:
        root: folder written by :func:`write_synthetic_seg`.
        split: "train" or "val".
        image_size: resize side S (bilinear image, nearest mask); None keeps the stored size.
        transform: optional ``(image (H, W, 3) uint8, mask (H, W) uint8) -> (image, mask)``
            applied after resizing (augmentation).

    Items: ``{"pixel_values": (3, S, S) float32, "mask": (S, S) int64 (255 = ignore),
    "sample_id": str}``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        image_size: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.root = Path(root)
        meta_path = self.root / "classes.json"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{meta_path}: missing; write the set with scripts/make_synthetic_seg.py"
            )
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
            self.class_names: list[str] = [str(name) for name in self.meta["classes"]]
            self.ignore_index = int(self.meta.get("ignore_index", IGNORE_INDEX))
        except (OSError, ValueError, RecursionError, KeyError, TypeError, AttributeError) as exc:
            raise ClosedSetDataError(
                f"{meta_path}: not a classes file of make_synthetic_seg.py "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        self.split = split
        self.image_size = image_size
        self.transform = transform
        image_dir = self.root / split / "images"
        if not image_dir.is_dir():
            raise FileNotFoundError(f"{image_dir}: missing split folder")
        self.sample_ids = sorted(p.stem for p in image_dir.glob("*.png"))
        if not self.sample_ids:
            raise FileNotFoundError(f"{image_dir}: holds no .png images")
        for sample_id in self.sample_ids:
            if not (self.root / split / "masks" / f"{sample_id}.png").is_file():
                raise FileNotFoundError(f"{self.root / split / 'masks'}: no mask for {sample_id}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored (image (H, W, 3) uint8, mask (H, W) uint8) of sample ``index``."""
        sample_id = self.sample_ids[index]
        image_path = self.root / self.split / "images" / f"{sample_id}.png"
        mask_path = self.root / self.split / "masks" / f"{sample_id}.png"
        image, mask = read_png(image_path).convert("RGB"), read_png(mask_path)
        if mask.mode != "L":
            raise ClosedSetDataError(
                f"{mask_path}: mask must be 8-bit single channel, got {mask.mode}"
            )
        if mask.size != image.size:
            raise ClosedSetDataError(
                f"{mask_path}: mask is {mask.size[0]}x{mask.size[1]} (WxH), its image "
                f"{image.size[0]}x{image.size[1]}"
            )
        values = np.unique(np.asarray(mask))
        bad = values[(values >= self.num_classes) & (values != self.ignore_index)]
        if bad.size:
            raise ClosedSetDataError(
                f"{mask_path}: class ids must be 0..{self.num_classes - 1} or "
                f"{self.ignore_index} (ignored), found {', '.join(map(str, bad[:5].tolist()))}"
            )
        if self.image_size is not None and image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.BILINEAR)
            mask = mask.resize((self.image_size, self.image_size), Image.NEAREST)
        return np.asarray(image), np.asarray(mask)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.load(index)
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return {
            "pixel_values": normalize_image(image),
            "mask": torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64)),
            "sample_id": self.sample_ids[index],
        }
