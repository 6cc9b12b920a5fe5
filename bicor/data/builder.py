"""``build_closed_set_dataset``: one entry point for LoveDA, Vaihingen and Potsdam."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bicor.data.augment import DEFAULT_SCALES, CropAugment
from bicor.data.isprs import build_isprs_dataset
from bicor.data.loveda import build_loveda_dataset
from bicor.data.tile_dataset import MODES, TileSegmentationDataset

CLOSED_SET_DATASETS = ("loveda", "vaihingen", "potsdam")


def build_closed_set_dataset(
    name: str,
    root: str | Path,
    split: str,
    *,
    mode: str = "train",
    crop_size: int = 512,
    scales: Sequence[float] = DEFAULT_SCALES,
    flips: bool = True,
    rot90: bool = True,
    split_scheme: str = "geoseg",
    image_mode: str | None = None,
    domains: Sequence[str] = ("Urban", "Rural"),
    cache_dir: str | Path | None = None,
    eroded_labels: bool | None = None,
    include_excluded: bool = False,
    crops_per_tile: int | None = None,
    crop_mode: str = "random",
    crop_stride: int | None = None,
    seed: int | None = None,
    rot90_p: float = 1.0,
    smart_crop_ratio: float | None = None,
    mosaic_p: float = 0.0,
    mosaic_size: int = 1024,
) -> TileSegmentationDataset:
    """Build a closed-set dataset from the official layout under ``root``.

    Args:
        name: "loveda", "vaihingen" or "potsdam".
        root: the folder the official archives were unpacked into.
        split: "train", "val", "test", or joined like "train+val".
        mode: "train" (augmented ``crop_size`` crops) or "eval" (whole tiles, batch size 1).
        crop_size: side of training crops.
        scales: random scale factors of training crops.
        flips: random horizontal / vertical flips in training.
        rot90: random rotations by multiples of 90 degrees in training.
        split_scheme: ISPRS split lists, "geoseg" (default) or "mmseg" (challenge split).
        image_mode: Potsdam "RGB" (default) or "IRRG"; Vaihingen is IRRG only.
        domains: LoveDA scene domains to use.
        cache_dir: where ISPRS tiles are decoded once (default ``<root>/.cache``).
        eroded_labels: ISPRS ``_noBoundary`` labels (default: True in eval, False in train).
        include_excluded: keep tiles left out by default (Potsdam 7_10).
        crops_per_tile: random crops per tile and epoch (default: enough to cover the tile).
        crop_mode: "random" or "sliding" training crops.
        crop_stride: grid step of sliding crops (default ``crop_size``).
        seed: fixed seed for reproducible crops (default: torch's per-worker generator).
        rot90_p, smart_crop_ratio, mosaic_p, mosaic_size: the authors' augmentations (see
            :class:`~bicor.data.augment.CropAugment`); the defaults leave them off.

    Items: ``pixel_values`` float32 (3, S, S), ``mask`` int64 (S, S) with 255 = ignore,
    ``sample_id`` str; in eval mode S is the tile's own (H, W).
    """
    if name not in CLOSED_SET_DATASETS:
        raise ValueError(
            f"unknown closed-set dataset {name!r}; expected one of {CLOSED_SET_DATASETS}"
        )
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    augment = None
    if mode == "train":
        augment = CropAugment(
            crop_size,
            tuple(float(s) for s in scales),
            flips,
            rot90,
            rot90_p=rot90_p,
            smart_crop_ratio=smart_crop_ratio,
            mosaic_p=mosaic_p,
            mosaic_size=mosaic_size,
        )
    if name == "loveda":
        for option, value, default in (
            ("split_scheme", split_scheme, "geoseg"),
            ("image_mode", image_mode, None),
            ("eroded_labels", eroded_labels, None),
            ("include_excluded", include_excluded, False),
        ):
            if value != default:
                raise ValueError(f"{option}={value!r} does not apply to LoveDA")
        return build_loveda_dataset(
            root,
            split,
            mode=mode,
            augment=augment,
            domains=domains,
            crops_per_tile=crops_per_tile,
            crop_mode=crop_mode,
            crop_stride=crop_stride,
            seed=seed,
        )
    if tuple(domains) != ("Urban", "Rural"):
        raise ValueError(f"domains={tuple(domains)!r} applies to LoveDA only, not {name}")
    return build_isprs_dataset(
        name,
        root,
        split,
        mode=mode,
        augment=augment,
        split_scheme=split_scheme,
        image_mode=image_mode,
        cache_dir=cache_dir,
        eroded_labels=eroded_labels,
        include_excluded=include_excluded,
        crops_per_tile=crops_per_tile,
        crop_mode=crop_mode,
        crop_stride=crop_stride,
        seed=seed,
    )
