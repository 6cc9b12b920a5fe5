"""Check a closed-set dataset as unpacked by a user, without training on it.

``check_closed_set_dataset(name, root)`` decodes every image and label of every split and
returns the JSON-ready report shared with the referring check::

    {"dataset": str, "root": str,
     "splits": {split: {"samples": int, "images": int, "sizes": {"HxW": int},
                        "class_pixels": {class name: int}, "class_shares": {class name: float},
                        "ignore_pixels": int}},
     "problems": [{"kind": str, "file": str, "detail": str}],
     "layout": {kind: {folder: tiles}}}                      (ISPRS only)

``samples``: tiles with a readable image and a usable label (LoveDA Test: readable images);
``images``: images decoded; ``class_pixels`` come from the full colour labels (ISPRS; the
eroded ones where the full label is unusable) or the masks (LoveDA); ``ignore_pixels`` are
eroded-boundary pixels (ISPRS) or no-data 0s (LoveDA). ``layout`` (ISPRS): for images, labels and
eroded labels, the folders (relative to the root, "." the root) the tiles were read from, plus
``shadowed``: {kind: tiles also present in a less preferred folder, which was not used}.
Problem kinds: missing_folder, missing_image, missing_label, unreadable_image,
unreadable_label, size_mismatch, unknown_colour, unknown_value, duplicate_image, unlisted_tile.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bicor.data.errors import ClosedSetDataError
from bicor.data.image_io import read_class_values, read_rgb
from bicor.data.isprs import (
    IsprsTilePaths,
    folders_used,
    missing_file_detail,
    resolve_image_mode,
    tile_name,
    tile_paths,
)
from bicor.data.isprs_layout import IsprsLayout
from bicor.data.loveda import check_domains
from bicor.data.palettes import ISPRS_PALETTE, get_palette, label_statistics
from bicor.data.splits import (
    all_tiles,
    load_split_table,
    loveda_folders,
    loveda_is_labelled,
    scheme_split_names,
    split_tiles,
)
from bicor.registry import CLOSED_SET_DATASETS

BLOCKING_KINDS = frozenset(
    {
        "unreadable_image",
        "unreadable_label",
        "size_mismatch",
        "unknown_colour",
        "unknown_value",
        "duplicate_image",
    }
)
"""Problem kinds that make training or evaluation fail (missing tiles are only skipped)."""

PROBLEM_MEANINGS: dict[str, str] = {
    "missing_folder": "a folder of the layout is absent",
    "missing_image": "a tile's image is absent (the tile is skipped)",
    "missing_label": "a tile's label is absent (the tile is skipped)",
    "unlisted_tile": "a tile is in no split of the split table (not used)",
    "unreadable_image": "an image file cannot be decoded",
    "unreadable_label": "a label file cannot be decoded",
    "size_mismatch": "a label's size differs from its image's",
    "unknown_colour": "a label colour is not one of the data set's classes",
    "unknown_value": "a mask value is not one of the data set's classes",
    "duplicate_image": "one image number is used twice",
}
"""Closed-set problem kind -> what it means (kinds in BLOCKING_KINDS make the set unusable)."""


class _SplitTally:
    """Counts of one split while the check runs."""

    def __init__(self, class_names: tuple[str, ...]) -> None:
        self.class_names = class_names
        self.samples = 0
        self.images = 0
        self.sizes: Counter[str] = Counter()
        self.class_pixels = np.zeros(len(class_names), dtype=np.int64)
        self.ignore_pixels = 0

    def report(self) -> dict[str, Any]:
        total = int(self.class_pixels.sum())
        return {
            "samples": self.samples,
            "images": self.images,
            "sizes": dict(sorted(self.sizes.items())),
            "class_pixels": {n: int(c) for n, c in zip(self.class_names, self.class_pixels)},
            "class_shares": {
                n: round(int(c) / total, 6) if total else 0.0
                for n, c in zip(self.class_names, self.class_pixels)
            },
            "ignore_pixels": self.ignore_pixels,
        }


def _problem(kind: str, file: Path | str, detail: str) -> dict[str, str]:
    return {"kind": kind, "file": str(file), "detail": detail}


def _read(path: Path, reader, kind: str, problems: list[dict[str, str]]) -> np.ndarray | None:
    """Decode ``path`` with ``reader`` or record an ``unreadable_*`` problem."""
    try:
        return reader(path)
    except ClosedSetDataError as error:
        problems.append(_problem(kind, path, str(error).removeprefix(f"{path}: ")))
        return None


def _size_text(shape: tuple[int, ...]) -> str:
    return f"{shape[0]}x{shape[1]}"


def _check_isprs_label(
    layout: IsprsLayout,
    paths: IsprsTilePaths,
    kind: str,
    image_shape: tuple[int, ...],
    problems: list[dict[str, str]],
):
    """Statistics of one colour label (``kind`` "label" or "eroded_label"), or None."""
    path = paths.path(kind)
    if not path.is_file():
        problems.append(_problem("missing_label", path, missing_file_detail(layout, paths, kind)))
        return None
    rgb = _read(path, read_rgb, "unreadable_label", problems)
    if rgb is None:
        return None
    if rgb.shape[:2] != image_shape[:2]:
        problems.append(
            _problem(
                "size_mismatch",
                path,
                f"label {_size_text(rgb.shape)} vs image {_size_text(image_shape)} (HxW)",
            )
        )
        return None
    stats = label_statistics(rgb, ISPRS_PALETTE, boundary_is_ignore=kind == "eroded_label")
    if stats.unknown:
        listed = "; ".join(f"colour {c} x {n} pixels" for c, n in stats.unknown[:10])
        more = f"; {len(stats.unknown) - 10} more colours" if len(stats.unknown) > 10 else ""
        problems.append(_problem("unknown_colour", path, listed + more))
        return None
    return stats


def _check_isprs(
    name: str,
    root: Path,
    *,
    split_scheme: str,
    image_mode: str | None,
    include_excluded: bool,
    progress: bool,
) -> tuple[dict[str, Any], list[dict[str, str]], dict[str, Any]]:
    mode = resolve_image_mode(name, image_mode)
    palette = get_palette(name)
    problems: list[dict[str, str]] = []
    splits: dict[str, Any] = {}
    checked: dict[str, tuple] = {}  # tile -> _check_isprs_tile(...); splits may share tiles
    layout = IsprsLayout(name, root, mode)
    located: dict[str, IsprsTilePaths] = {}
    for split in scheme_split_names(name, split_scheme):
        tally = _SplitTally(palette.class_names)
        tiles = split_tiles(name, split_scheme, split, include_excluded=include_excluded)
        for tile in tqdm(tiles, desc=f"checking {name} {split}", unit="tile", disable=not progress):
            if tile not in checked:
                located[tile] = tile_paths(name, root, tile, image_mode=mode, layout=layout)
                checked[tile] = _check_isprs_tile(layout, located[tile], problems)
            image_shape, full, eroded = checked[tile]
            if image_shape is None:
                continue
            tally.images += 1
            tally.sizes[_size_text(image_shape)] += 1
            stats = full or eroded
            if stats is not None:
                tally.samples += 1
                tally.class_pixels += np.asarray(stats.class_pixels, dtype=np.int64)
            if eroded is not None:
                tally.ignore_pixels += eroded.ignore_pixels
        splits[split] = tally.report()
    problems.extend(_unlisted_isprs_tiles(name, layout, mode))
    return splits, problems, _layout_report(layout, list(located.values()))


def _layout_report(layout: IsprsLayout, located: list[IsprsTilePaths]) -> dict[str, Any]:
    """Folders the tiles were read from, and how many tiles a preferred folder shadowed."""
    report: dict[str, Any] = folders_used(layout, located)
    shadowed = Counter(kind for paths in located for kind in paths.shadowed)
    if shadowed:
        report["shadowed"] = dict(shadowed)
    return report


def _check_isprs_tile(layout: IsprsLayout, paths: IsprsTilePaths, problems: list) -> tuple:
    """(image shape or None, full-label statistics or None, eroded statistics or None)."""
    if not paths.image.is_file():
        detail = missing_file_detail(layout, paths, "image")
        problems.append(_problem("missing_image", paths.image, detail))
        return None, None, None
    image = _read(paths.image, read_rgb, "unreadable_image", problems)
    if image is None:
        return None, None, None
    full = _check_isprs_label(layout, paths, "label", image.shape, problems)
    eroded = _check_isprs_label(layout, paths, "eroded_label", image.shape, problems)
    return image.shape, full, eroded


def _unlisted_isprs_tiles(name: str, layout: IsprsLayout, mode: str) -> list[dict[str, str]]:
    """Image files in the image folder that no split list knows (misnamed or extra tiles)."""
    known = {tile_name(name, t) for t in all_tiles(name)}
    folder = layout.image_folder()
    suffix = ".tif" if name == "vaihingen" else f"_{mode}.tif"
    if not folder.is_dir():
        return [_problem("missing_folder", folder, "image folder not found")]
    problems = []
    for path in sorted(folder.iterdir()):
        if path.name.endswith(suffix) and path.name[: -len(suffix)] not in known:
            problems.append(_problem("unlisted_tile", path, "not in any split list"))
    return problems


def _check_loveda(
    root: Path, domains: tuple[str, ...], progress: bool
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    palette = get_palette("loveda")
    problems: list[dict[str, str]] = []
    splits: dict[str, Any] = {}
    seen: dict[str, Path] = {}
    for split in load_split_table()["loveda"]["folders"]:
        tally = _SplitTally(palette.class_names)
        labelled = loveda_is_labelled(split)
        for _, folder in loveda_folders(split):
            for domain in domains:
                base = root / folder / domain
                _check_loveda_folder(base, labelled, tally, seen, problems, progress)
        splits[split] = tally.report()
    return splits, problems


def _check_loveda_folder(
    base: Path,
    labelled: bool,
    tally: _SplitTally,
    seen: dict[str, Path],
    problems: list,
    progress: bool,
) -> None:
    image_dir, mask_dir = base / "images_png", base / "masks_png"
    if not image_dir.is_dir():
        problems.append(_problem("missing_folder", image_dir, "image folder not found"))
        return
    if labelled and not mask_dir.is_dir():
        problems.append(_problem("missing_folder", mask_dir, "mask folder not found"))
    images = sorted(image_dir.glob("*.png"))
    if labelled and mask_dir.is_dir():
        names = {p.name for p in images}
        for mask in sorted(mask_dir.glob("*.png")):
            if mask.name not in names:
                problems.append(
                    _problem("missing_image", image_dir / mask.name, "mask has no image")
                )
    desc = f"checking {base.parent.name}/{base.name}"
    for image_path in tqdm(images, desc=desc, unit="image", disable=not progress):
        if image_path.stem in seen:
            problems.append(
                _problem(
                    "duplicate_image", image_path, f"number also used by {seen[image_path.stem]}"
                )
            )
        seen[image_path.stem] = image_path
        image = _read(image_path, read_rgb, "unreadable_image", problems)
        if image is None:
            continue
        tally.images += 1
        tally.sizes[_size_text(image.shape)] += 1
        if not labelled:
            tally.samples += 1
            continue
        mask_path = mask_dir / image_path.name
        if not mask_path.is_file():
            problems.append(_problem("missing_label", mask_path, "mask file not found"))
            continue
        values = _read(mask_path, read_class_values, "unreadable_label", problems)
        if values is None:
            continue
        if values.shape != image.shape[:2]:
            problems.append(
                _problem(
                    "size_mismatch",
                    mask_path,
                    f"mask {_size_text(values.shape)} vs image {_size_text(image.shape)} (HxW)",
                )
            )
            continue
        counts = np.bincount(values.ravel(), minlength=256)
        if counts[8:].any():
            bad = ", ".join(f"{v} x {int(counts[v])}" for v in np.flatnonzero(counts[8:]) + 8)
            problems.append(_problem("unknown_value", mask_path, f"values above 7: {bad} pixels"))
            continue
        tally.samples += 1
        tally.class_pixels += counts[1:8]
        tally.ignore_pixels += int(counts[0])


def check_closed_set_dataset(
    name: str,
    root: str | Path,
    *,
    split_scheme: str = "geoseg",
    image_mode: str | None = None,
    domains: tuple[str, ...] = ("Urban", "Rural"),
    include_excluded: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Decode and check every file of a closed-set dataset; see the module doc for the report.

    Args:
        name: "loveda", "vaihingen" or "potsdam".
        root: the folder the official archives were unpacked into.
        split_scheme: ISPRS split lists to report ("geoseg" or "mmseg").
        image_mode: Potsdam "RGB" (default) or "IRRG".
        domains: LoveDA domains to check.
        include_excluded: also check tiles left out by default (Potsdam 7_10).
        progress: show progress bars (default: when stderr is a terminal).
    """
    root = Path(root)
    if name not in CLOSED_SET_DATASETS:
        raise ValueError(f"unknown closed-set dataset {name!r}")
    if not root.is_dir():
        return {
            "dataset": name,
            "root": str(root),
            "splits": {},
            "problems": [_problem("missing_folder", root, "dataset root not found")],
        }
    show = sys.stderr.isatty() if progress is None else progress
    if name == "loveda":
        splits, problems = _check_loveda(root, check_domains(domains), show)
    else:
        splits, problems, layout = _check_isprs(
            name,
            root,
            split_scheme=split_scheme,
            image_mode=image_mode,
            include_excluded=include_excluded,
            progress=show,
        )
        return {
            "dataset": name,
            "root": str(root),
            "splits": splits,
            "problems": problems,
            "layout": layout,
        }
    return {"dataset": name, "root": str(root), "splits": splits, "problems": problems}


def is_usable(report: dict[str, Any]) -> bool:
    """True when some split has samples and no problem would make loading fail.

    Missing tiles or labels do not count against it: loaders skip them and say so.
    """
    has_samples = any(split.get("samples", 0) > 0 for split in report.get("splits", {}).values())
    blocking = any(p["kind"] in BLOCKING_KINDS for p in report.get("problems", []))
    return has_samples and not blocking
