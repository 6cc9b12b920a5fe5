"""LoveDA read as the official archive unpacks.

Layout::

    <root>/Train/{Urban,Rural}/images_png/<n>.png   and  .../masks_png/<n>.png
    <root>/Val/{Urban,Rural}/images_png/<n>.png     and  .../masks_png/<n>.png
    <root>/Test/{Urban,Rural}/images_png/<n>.png    (no masks; scored online)

Mask values: 0 no-data (-> ignore 255), 1..7 -> train ids 0..6 (background, building, road,
water, barren, forest, agriculture). Image numbers are unique across domains and splits, so
the file stem is the sample id and the name of its submission PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bicor.data.augment import CropAugment
from bicor.data.errors import ClosedSetDataError, check_label_matches_image
from bicor.data.image_io import read_class_values, read_rgb, read_size
from bicor.data.palettes import IGNORE_INDEX, LOVEDA_PALETTE
from bicor.data.splits import loveda_domains, loveda_folders, loveda_is_labelled
from bicor.data.tile_dataset import TileRecord, TileSegmentationDataset

_INVALID = 254  # scratch marker for mask values above 7

LOVEDA_VALUE_TO_ID = np.full(256, _INVALID, dtype=np.uint8)
LOVEDA_VALUE_TO_ID[0] = IGNORE_INDEX
LOVEDA_VALUE_TO_ID[1:8] = np.arange(7, dtype=np.uint8)
"""Lookup table: LoveDA mask value -> train id (0 -> 255, 1..7 -> 0..6)."""


def loveda_mask_to_ids(values: np.ndarray, *, source: str) -> np.ndarray:
    """Map LoveDA mask values to train ids; a value above 7 raises, naming ``source``."""
    ids = LOVEDA_VALUE_TO_ID[np.asarray(values, dtype=np.uint8)]
    invalid = ids == _INVALID
    if invalid.any():
        bad, counts = np.unique(np.asarray(values)[invalid], return_counts=True)
        listed = ", ".join(f"{int(v)} x {int(c)}" for v, c in zip(bad, counts))
        raise ClosedSetDataError(
            f"{source}: LoveDA mask values must be 0..7, found {listed} (value x pixels)"
        )
    return ids


def _image_order(path: Path) -> tuple[int, int | str]:
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.stem)


def check_domains(domains: Sequence[str]) -> tuple[str, ...]:
    """Validate a selection of LoveDA domains ("Urban", "Rural")."""
    known = loveda_domains()
    domains = (domains,) if isinstance(domains, str) else tuple(domains)
    unknown = [d for d in domains if d not in known]
    if not domains or unknown:
        raise ValueError(f"LoveDA domains must be a non-empty selection of {known}, got {domains}")
    return domains


def list_loveda_images(
    root: str | Path, split: str, domains: Sequence[str] = ("Urban", "Rural")
) -> tuple[list[TileRecord], list[dict[str, str]], bool]:
    """Records of a LoveDA split (may be "train+val"), problems met, and whether it has masks.

    An image without its mask (train, val) is skipped and reported as ``missing_label``;
    an absent domain folder is reported as ``missing_folder``. Two images with one number
    raise :class:`ClosedSetDataError` (the flat submission could not hold both).
    """
    root = Path(root)
    domains = check_domains(domains)
    parts = loveda_folders(split)
    labelled = {loveda_is_labelled(part) for part, _ in parts}
    if len(labelled) > 1:
        raise ValueError(f"LoveDA split {split!r} mixes labelled and unlabelled parts")
    has_labels = labelled.pop()
    records: list[TileRecord] = []
    missing: list[dict[str, str]] = []
    seen: dict[str, Path] = {}
    for _, folder in parts:
        for domain in domains:
            image_dir = root / folder / domain / "images_png"
            if not image_dir.is_dir():
                missing.append({"kind": "missing_folder", "file": str(image_dir), "detail": ""})
                continue
            for image_path in sorted(image_dir.glob("*.png"), key=_image_order):
                if image_path.stem in seen:
                    raise ClosedSetDataError(
                        f"{image_path}: image number {image_path.stem} also used by "
                        f"{seen[image_path.stem]}"
                    )
                seen[image_path.stem] = image_path
                mask_path = None
                if has_labels:
                    mask_path = root / folder / domain / "masks_png" / image_path.name
                    if not mask_path.is_file():
                        missing.append(
                            {"kind": "missing_label", "file": str(mask_path), "detail": ""}
                        )
                        continue
                height, width = read_size(image_path)
                records.append(TileRecord(image_path.stem, image_path, mask_path, height, width))
    return records, missing, has_labels


class LoveDAReader:
    """Reads a LoveDA image (RGB PNG) and its mask as train ids (PNGs are small: no cache)."""

    def __call__(self, record: TileRecord) -> tuple[np.ndarray, np.ndarray | None]:
        image = read_rgb(record.image_path)  # (H, W, 3)
        if record.label_path is None:
            return image, None
        ids = loveda_mask_to_ids(
            read_class_values(record.label_path), source=str(record.label_path)
        )  # (H, W)
        check_label_matches_image(
            ids, image, label_path=record.label_path, image_path=record.image_path, word="mask"
        )
        return image, ids


def build_loveda_dataset(
    root: str | Path,
    split: str,
    *,
    mode: str,
    augment: CropAugment | None,
    domains: Sequence[str] = ("Urban", "Rural"),
    crops_per_tile: int | dict[str, int] | None = None,
    crop_mode: str | None = None,
    crop_stride: int | None = None,
    seed: int | None = None,
) -> TileSegmentationDataset:
    """A LoveDA split ("train", "val", "test", or joined like "train+val") as a dataset.

    The Test split has no masks: it is eval-only and its items carry all-ignore masks.
    Raises :class:`ClosedSetDataError` when the split holds no image.
    """
    records, missing, has_labels = list_loveda_images(root, split, domains)
    if not records:
        folders = ", ".join(
            f"{Path(root) / f}/<Urban|Rural>/images_png" for _, f in loveda_folders(split)
        )
        raise ClosedSetDataError(f"{root}: no LoveDA {split} images found (looked in {folders})")
    return TileSegmentationDataset(
        records,
        LoveDAReader(),
        palette=LOVEDA_PALETTE,
        dataset_name="loveda",
        split=split,
        mode=mode,
        augment=augment,
        crops_per_tile=crops_per_tile,
        crop_mode=crop_mode,
        crop_stride=crop_stride,
        seed=seed,
        has_labels=has_labels,
        missing=missing,
    )
