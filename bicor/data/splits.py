"""Read the split lists of ``splits.json`` (all closed-set splits live there, as data).

ISPRS splits list tile ids ("1" .. "38" for Vaihingen, "r_c" for Potsdam) per scheme:
``geoseg`` (UNetFormer / GeoSeg, the default) and ``mmseg`` (the ISPRS challenge split as
mmsegmentation converts it). Tiles marked ``excluded`` (Potsdam 7_10) are left out unless
asked for. LoveDA splits are folders; the table maps split names to them.
A split name may join several splits with "+", e.g. ``"train+val"``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from bicor.registry import ISPRS_DATASETS

SPLITS_FILE = Path(__file__).with_name("splits.json")
SPLIT_SCHEMES = ("geoseg", "mmseg")


@lru_cache(maxsize=1)
def load_split_table() -> dict[str, Any]:
    """The parsed ``splits.json`` (cached; treat as read-only)."""
    with SPLITS_FILE.open(encoding="utf-8") as handle:
        return json.load(handle)


def _isprs_entry(dataset: str) -> dict[str, Any]:
    table = load_split_table()
    if dataset not in ISPRS_DATASETS:
        raise ValueError(
            f"tile splits exist for {' and '.join(map(repr, ISPRS_DATASETS))}, not {dataset!r}"
        )
    return table[dataset]


def split_parts(split: str) -> list[str]:
    """The split names joined in ``split`` ("train+val" -> ["train", "val"])."""
    parts = [part.strip() for part in split.split("+")]
    if not split or any(not part for part in parts):
        raise ValueError(f"invalid split name {split!r}")
    return parts


def scheme_split_names(dataset: str, scheme: str) -> list[str]:
    """Split names that ``scheme`` defines for an ISPRS ``dataset``."""
    schemes = _isprs_entry(dataset)["schemes"]
    if scheme not in schemes:
        raise ValueError(
            f"unknown split scheme {scheme!r} for {dataset}; expected one of {sorted(schemes)}"
        )
    return [name for name in schemes[scheme] if name != "source"]


def all_tiles(dataset: str) -> list[str]:
    """Every tile id of an ISPRS ``dataset`` (including excluded ones)."""
    return list(_isprs_entry(dataset)["all_tiles"])


def excluded_tiles(dataset: str) -> dict[str, str]:
    """Tiles left out by default, with the reason (Potsdam: {"7_10": ...})."""
    return dict(_isprs_entry(dataset)["excluded"])


def split_tiles(
    dataset: str, scheme: str, split: str, *, include_excluded: bool = False
) -> list[str]:
    """Tile ids of ``split`` (may be "a+b") under ``scheme``, in the table's order.

    Excluded tiles are dropped unless ``include_excluded``; a tile named by two joined splits
    is listed once.
    """
    names = scheme_split_names(dataset, scheme)
    schemes = _isprs_entry(dataset)["schemes"][scheme]
    excluded = set() if include_excluded else set(excluded_tiles(dataset))
    tiles: list[str] = []
    for part in split_parts(split):
        if part not in names:
            raise ValueError(
                f"unknown split {part!r} for {dataset} scheme {scheme!r}; expected one of {names}"
            )
        tiles.extend(t for t in schemes[part] if t not in excluded and t not in tiles)
    return tiles


def loveda_folders(split: str) -> list[tuple[str, str]]:
    """(split name, folder) pairs of a LoveDA split, e.g. "train+val" -> Train, Val."""
    folders = load_split_table()["loveda"]["folders"]
    pairs = []
    for part in split_parts(split):
        if part not in folders:
            raise ValueError(f"unknown LoveDA split {part!r}; expected one of {sorted(folders)}")
        pairs.append((part, folders[part]))
    return pairs


def loveda_is_labelled(split: str) -> bool:
    """True when a LoveDA split (part) ships masks (train, val); Test does not."""
    return split in load_split_table()["loveda"]["labelled"]


def loveda_domains() -> tuple[str, ...]:
    """LoveDA's scene domains ("Urban", "Rural")."""
    return tuple(load_split_table()["loveda"]["domains"])
