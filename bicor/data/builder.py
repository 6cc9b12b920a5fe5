"""``build_closed_set_dataset``: one entry point for LoveDA, Vaihingen and Potsdam."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bicor.data.augment import DEFAULT_SCALES, CropAugment
from bicor.data.car_oversampling import car_oversampling_from
from bicor.data.isprs import build_isprs_dataset
from bicor.data.loveda import build_loveda_dataset
from bicor.data.palettes import ISPRS_PALETTE
from bicor.data.tile_dataset import MODES, TileSegmentationDataset
from bicor.registry import CLOSED_SET_DATASETS


def _check_name_and_mode(name: str, mode: str) -> None:
    if name not in CLOSED_SET_DATASETS:
        raise ValueError(
            f"unknown closed-set dataset {name!r}; expected one of {CLOSED_SET_DATASETS}"
        )
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _refuse_isprs_options(
    split_scheme: str,
    image_mode: str | None,
    eroded_labels: bool | None,
    include_excluded: bool,
    car_oversampling: bool,
) -> None:
    """Raise ``ValueError`` for an ISPRS-only option set away from its default for LoveDA."""
    for option, value, default in (
        ("split_scheme", split_scheme, "geoseg"),
        ("image_mode", image_mode, None),
        ("eroded_labels", eroded_labels, None),
        ("include_excluded", include_excluded, False),
        ("car_oversampling", car_oversampling, False),
    ):
        if value != default:
            raise ValueError(f"{option}={value!r} does not apply to LoveDA")


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
    crops_per_tile: int | dict[str, int] | None = None,
    crop_mode: str | None = None,
    crop_stride: int | None = None,
    seed: int | None = None,
    rot90_p: float = 1.0,
    smart_crop_ratio: float | None = None,
    mosaic_p: float = 0.0,
    mosaic_size: int = 1024,
    car_oversampling: bool | dict[str, Any] | None = None,
) -> TileSegmentationDataset:
    """Build a closed-set dataset from the official layout under ``root``.

    Args:
        name: "loveda", "vaihingen" or "potsdam".
        root: the folder the official archives were unpacked into.
        split: "train", "val", "test", or joined like "train+val".
        mode: "train" (augmented ``crop_size`` crops) or "eval" (whole tiles, batch size 1).
        crop_size, scales: side and random scale factors of training crops.
        flips, rot90: random flips and rotations by multiples of 90 degrees in training.
        split_scheme, image_mode: ISPRS split lists, "geoseg" (default) or "mmseg"; Potsdam
            "RGB" (default) or "IRRG" (Vaihingen is IRRG only).
        domains, cache_dir: LoveDA scene domains; where ISPRS tiles are decoded once
            (default ``<root>/.cache``).
        eroded_labels: ISPRS ``_noBoundary`` labels (default: True in eval, False in train).
        include_excluded: keep tiles left out by default (Potsdam 7_10).
        crops_per_tile: random crops per tile and epoch (default: enough to cover the tile), or
            GeoSeg's count ``{patch, stride, copies}`` (``car_oversampling.GeoSegSquares``).
        crop_mode, crop_stride: "random", "sliding", "squares" (the authors' ISPRS items, the
            default with a ``{patch, stride, copies}`` count) or "whole" (their LoveDA items).
        seed: fixed seed for reproducible crops (default: torch's per-worker generator).
        rot90_p, smart_crop_ratio, mosaic_p, mosaic_size: the authors' augmentations (see
            :class:`~bicor.data.augment.CropAugment`); the defaults leave them off.
        car_oversampling: ISPRS training: add GeoSeg's car zooms (true, or a mapping of
            ``car_oversampling.CarOversampling`` settings).

    Items: ``pixel_values`` float32 (3, S, S), ``mask`` int64 (S, S) with 255 = ignore,
    ``sample_id`` str; in eval mode S is the tile's own (H, W).
    """
    _check_name_and_mode(name, mode)
    authors = {"rot90_p": rot90_p, "smart_crop_ratio": smart_crop_ratio}
    authors |= {"mosaic_p": mosaic_p, "mosaic_size": mosaic_size}
    augment = None
    if mode == "train":
        augment = CropAugment(crop_size, tuple(map(float, scales)), flips, rot90, **authors)
    common: dict[str, Any] = {"mode": mode, "augment": augment, "seed": seed}
    common |= {"crops_per_tile": crops_per_tile, "crop_mode": crop_mode, "crop_stride": crop_stride}
    if name == "loveda":
        isprs = (split_scheme, image_mode, eroded_labels, include_excluded, bool(car_oversampling))
        _refuse_isprs_options(*isprs)
        return build_loveda_dataset(root, split, domains=domains, **common)
    if tuple(domains) != ("Urban", "Rural"):
        raise ValueError(f"domains={tuple(domains)!r} applies to LoveDA only, not {name}")
    return build_isprs_dataset(
        name,
        root,
        split,
        split_scheme=split_scheme,
        image_mode=image_mode,
        cache_dir=cache_dir,
        eroded_labels=eroded_labels,
        include_excluded=include_excluded,
        car_oversampling=car_oversampling_from(car_oversampling, ISPRS_PALETTE.class_names),
        **common,
    )
