"""ISPRS Vaihingen and Potsdam read as the official archives unpack.

Files (see datasets/README.md for each archive's contents)::

    Vaihingen  top/top_mosaic_09cm_area{ID}.tif                          (IRRG)
               <labels>/top_mosaic_09cm_area{ID}.tif                     (colour labels)
               <eroded>/top_mosaic_09cm_area{ID}_noBoundary.tif
    Potsdam    2_Ortho_RGB/top_potsdam_{r}_{c}_RGB.tif                   (image_mode "RGB")
               3_Ortho_IRRG/top_potsdam_{r}_{c}_IRRG.tif                 (image_mode "IRRG")
               <labels>/top_potsdam_{r}_{c}_label.tif
               <eroded>/top_potsdam_{r}_{c}_label_noBoundary.tif

The label archives hold bare files, so ``<labels>`` / ``<eroded>`` is the root itself, a folder
named after the archive, or the tidy folders (``ground_truth/``, ``ground_truth_eroded/``,
``5_Labels_all/``, ``5_Labels_all_noBoundary/``); :mod:`bicor.data.isprs_layout` lists the
accepted folders and prefers the tidy ones when several hold the same tile.
Both share the six ISPRS colours; eroded labels mark boundaries black (-> ignore 255).
Tiles are decoded once into a :class:`~bicor.data.tile_cache.TileCache` and cropped through
memory maps. Tiles of a split that are absent are skipped and reported, not fatal.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from bicor.data.augment import CropAugment
from bicor.data.car_oversampling import CarOversampling
from bicor.data.errors import ClosedSetDataError, check_label_matches_image
from bicor.data.image_io import read_rgb, read_size
from bicor.data.isprs_layout import IsprsLayout
from bicor.data.palettes import ISPRS_PALETTE, Palette, colour_to_ids
from bicor.data.splits import split_tiles
from bicor.data.tile_cache import TileCache
from bicor.data.tile_dataset import TileRecord, TileSegmentationDataset
from bicor.registry import ISPRS_DATASETS

logger = logging.getLogger(__name__)

IMAGE_MODES = {"vaihingen": ("IRRG",), "potsdam": ("RGB", "IRRG")}


@dataclass(frozen=True)
class IsprsTilePaths:
    """Files of one ISPRS tile (they need not exist; a missing one is at its documented place).

    ``shadowed`` maps a file kind to the other accepted locations that hold the same file
    (not used: the preferred folder wins).
    """

    tile: str
    name: str
    image: Path
    label: Path
    eroded_label: Path
    shadowed: dict[str, tuple[Path, ...]] = field(default_factory=dict)

    def path(self, kind: str) -> Path:
        return {"image": self.image, "label": self.label, "eroded_label": self.eroded_label}[kind]


def resolve_image_mode(dataset: str, image_mode: str | None) -> str:
    """The image bands to read: Vaihingen only has IRRG; Potsdam defaults to RGB."""
    if dataset not in IMAGE_MODES:
        raise ValueError(f"unknown ISPRS dataset {dataset!r}; expected one of {ISPRS_DATASETS}")
    modes = IMAGE_MODES[dataset]
    if image_mode is None:
        return modes[0]
    if image_mode not in modes:
        raise ValueError(f"{dataset} images come as {modes}, not image_mode={image_mode!r}")
    return image_mode


def tile_name(dataset: str, tile: str) -> str:
    """Tile id -> file stem shared by image and labels ("1" -> "top_mosaic_09cm_area1")."""
    if dataset == "vaihingen":
        return f"top_mosaic_09cm_area{tile}"
    if dataset == "potsdam":
        return f"top_potsdam_{tile}"
    raise ValueError(f"unknown ISPRS dataset {dataset!r}; expected one of {ISPRS_DATASETS}")


def tile_filenames(dataset: str, tile: str, *, image_mode: str) -> dict[str, str]:
    """File names of ``tile``: {"image", "label", "eroded_label"} -> name."""
    name = tile_name(dataset, tile)
    if dataset == "vaihingen":
        return {
            "image": f"{name}.tif",
            "label": f"{name}.tif",
            "eroded_label": f"{name}_noBoundary.tif",
        }
    return {
        "image": f"{name}_{image_mode}.tif",
        "label": f"{name}_label.tif",
        "eroded_label": f"{name}_label_noBoundary.tif",
    }


def tile_paths(
    dataset: str,
    root: str | Path,
    tile: str,
    *,
    image_mode: str,
    layout: IsprsLayout | None = None,
) -> IsprsTilePaths:
    """Where the image, colour label and eroded label of ``tile`` are under ``root``."""
    layout = layout or IsprsLayout(dataset, Path(root), image_mode)
    found: dict[str, Path] = {}
    shadowed: dict[str, tuple[Path, ...]] = {}
    for kind, filename in tile_filenames(dataset, tile, image_mode=image_mode).items():
        found[kind], others = layout.locate(kind, filename)
        if others:
            shadowed[kind] = tuple(others)
    return IsprsTilePaths(
        tile=tile,
        name=tile_name(dataset, tile),
        image=found["image"],
        label=found["label"],
        eroded_label=found["eroded_label"],
        shadowed=shadowed,
    )


def missing_file_detail(layout: IsprsLayout, paths: IsprsTilePaths, kind: str) -> str:
    """'tile T: <kind> file NAME not found; looked in ...; near miss ...'."""
    return f"tile {paths.tile}: {layout.missing_detail(kind, paths.path(kind).name)}"


def folders_used(layout: IsprsLayout, found: list[IsprsTilePaths]) -> dict[str, dict[str, int]]:
    """{kind: {folder relative to the root: tiles read from it}} over existing files."""
    used: dict[str, Counter[str]] = {
        "image": Counter(),
        "label": Counter(),
        "eroded_label": Counter(),
    }
    for paths in found:
        for kind, counter in used.items():
            if paths.path(kind).is_file():
                counter[layout.folder_of(paths.path(kind))] += 1
    return {kind: dict(counter) for kind, counter in used.items() if counter}


def list_isprs_tiles(
    dataset: str, root: str | Path, tiles: list[str], *, image_mode: str, eroded: bool
) -> tuple[list[TileRecord], list[dict[str, str]]]:
    """Records of the ``tiles`` whose image and label exist, and problems for the others.

    ``eroded`` picks the ``_noBoundary`` labels. A label whose size differs from its image's
    raises :class:`ClosedSetDataError` naming both files.
    """
    records: list[TileRecord] = []
    missing: list[dict[str, str]] = []
    layout = IsprsLayout(dataset, Path(root), image_mode)
    kind = "eroded_label" if eroded else "label"
    for tile in tiles:
        paths = tile_paths(dataset, root, tile, image_mode=image_mode, layout=layout)
        label = paths.path(kind)
        if not paths.image.is_file():
            detail = missing_file_detail(layout, paths, "image")
            missing.append({"kind": "missing_image", "file": str(paths.image), "detail": detail})
            continue
        if not label.is_file():
            detail = missing_file_detail(layout, paths, kind)
            missing.append({"kind": "missing_label", "file": str(label), "detail": detail})
            continue
        image_size, label_size = read_size(paths.image), read_size(label)
        if image_size != label_size:
            raise ClosedSetDataError(
                f"{label}: label is {label_size[0]}x{label_size[1]} (HxW) but its image "
                f"{paths.image} is {image_size[0]}x{image_size[1]}"
            )
        records.append(TileRecord(paths.name, paths.image, label, *image_size))
    return records, missing


def decode_label(path: Path, *, palette: Palette, eroded: bool) -> np.ndarray:
    """Read a colour label file into (H, W) uint8 ids (eroded: black boundary -> 255)."""
    return colour_to_ids(read_rgb(path), palette, source=str(path), boundary_is_ignore=eroded)


class IsprsTileReader:
    """Reads ISPRS tiles through a :class:`TileCache` (memory maps; decoded once).

    Args:
        cache: where decoded images and label ids are stored.
        eroded: whether the records' labels are ``_noBoundary`` labels (black = ignore).
        palette: the label colours (ISPRS).
    """

    def __init__(self, cache: TileCache, *, eroded: bool, palette: Palette = ISPRS_PALETTE):
        self.cache = cache
        self.eroded = eroded
        self.palette = palette

    def __call__(self, record: TileRecord) -> tuple[np.ndarray, np.ndarray | None]:
        image = self.cache.get(record.image_path, "rgb", read_rgb)  # (H, W, 3)
        if record.label_path is None:
            return image, None
        kind = "ids-eroded" if self.eroded else "ids"
        decode = partial(decode_label, palette=self.palette, eroded=self.eroded)
        ids = self.cache.get(record.label_path, kind, decode)  # (H, W)
        check_label_matches_image(
            ids, image, label_path=record.label_path, image_path=record.image_path, word="label"
        )
        return image, ids


def build_isprs_dataset(
    dataset: str,
    root: str | Path,
    split: str,
    *,
    mode: str,
    augment: CropAugment | None,
    split_scheme: str = "geoseg",
    image_mode: str | None = None,
    cache_dir: str | Path | None = None,
    eroded_labels: bool | None = None,
    include_excluded: bool = False,
    crops_per_tile: int | dict[str, int] | None = None,
    crop_mode: str | None = None,
    crop_stride: int | None = None,
    seed: int | None = None,
    car_oversampling: CarOversampling | None = None,
) -> TileSegmentationDataset:
    """Vaihingen or Potsdam split as a :class:`TileSegmentationDataset`.

    ``eroded_labels`` defaults to True in eval mode (the GeoSeg protocol scores on the
    ``_noBoundary`` labels) and False in train mode. ``cache_dir`` defaults to
    ``<root>/.cache``. Raises :class:`ClosedSetDataError` when no tile of the split is found.
    """
    root = Path(root)
    image_mode = resolve_image_mode(dataset, image_mode)
    eroded = (mode == "eval") if eroded_labels is None else eroded_labels
    tiles = split_tiles(dataset, split_scheme, split, include_excluded=include_excluded)
    records, missing = list_isprs_tiles(dataset, root, tiles, image_mode=image_mode, eroded=eroded)
    if not records:
        raise ClosedSetDataError(
            f"{root}: none of the {len(tiles)} {dataset} {split} tiles ({split_scheme} split) "
            f"was found with its {'eroded ' if eroded else ''}label; first: {missing[0]['detail']}"
        )
    folders = {Path(r.label_path).parent for r in records}
    logger.info(
        "%s %s: %d tiles, %slabels from %s",
        dataset,
        split,
        len(records),
        "eroded " if eroded else "",
        ", ".join(sorted(str(f) for f in folders)),
    )
    cache = TileCache(Path(cache_dir) if cache_dir is not None else root / ".cache")
    return TileSegmentationDataset(
        records,
        IsprsTileReader(cache, eroded=eroded),
        palette=ISPRS_PALETTE,
        dataset_name=dataset,
        split=split,
        mode=mode,
        augment=augment,
        crops_per_tile=crops_per_tile,
        crop_mode=crop_mode,
        crop_stride=crop_stride,
        seed=seed,
        car_oversampling=car_oversampling,
        missing=missing,
    )
