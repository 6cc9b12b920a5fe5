"""Tiny LoveDA, ISPRS Vaihingen and ISPRS Potsdam copies in their real on-disk layouts.

Real folder and file names, real label colours and mask values; small tiles (tens of pixels)
of varying sizes. Every writer returns what it wrote (pixels, expected train ids) so that tests
can check loaders value by value. Tests that need a broken file (a wrong colour, a missing
label) write it over the fixture with :func:`write_colour_label` or delete one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# ISPRS label colours in train-id order: impervious surface, building, low vegetation, tree,
# car, clutter. Written out here (not imported) so the tests check the loader's table.
ISPRS_COLOURS = np.array(
    [[255, 255, 255], [0, 0, 255], [0, 255, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0]],
    dtype=np.uint8,
)
BOUNDARY_COLOUR = (0, 0, 0)

# A few tiles of each split (GeoSeg scheme); the others are absent and reported missing.
VAIHINGEN_TILES = {"1": (64, 80), "3": (56, 72), "30": (48, 64), "2": (64, 80), "4": (40, 56)}
POTSDAM_TILES = ("2_11", "3_10", "2_10", "2_13", "7_10")
POTSDAM_SIZE = (64, 80)

LOVEDA_IMAGES = {
    # split folder -> domain -> image numbers (numbering as in the release: unique overall)
    "Train": {"Urban": ("1366", "1367"), "Rural": ("0", "1")},
    "Val": {"Urban": ("3514",), "Rural": ("2522",)},
    "Test": {"Urban": ("5167",), "Rural": ("4191", "4192")},
}
LOVEDA_SIZE = (48, 56)


def pattern_ids(height: int, width: int, num_classes: int, offset: int = 0) -> np.ndarray:
    """(H, W) uint8 ids in blocks of 8x10 pixels, cycling through every class."""
    rows = np.arange(height)[:, None] // 8
    cols = np.arange(width)[None, :] // 10
    return ((rows * 3 + cols + offset) % num_classes).astype(np.uint8)


def boundary_of(ids: np.ndarray) -> np.ndarray:
    """Bool (H, W): pixels whose right or lower neighbour has another id (the eroded rim)."""
    edge = np.zeros(ids.shape, dtype=bool)
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return edge


def random_image(height: int, width: int, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 noise, reproducible from ``seed``."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_colour_label(path: Path, ids: np.ndarray, boundary: np.ndarray | None = None) -> None:
    """Write ids as an 8-bit RGB TIFF in the ISPRS colours; ``boundary`` pixels black."""
    rgb = ISPRS_COLOURS[ids]
    if boundary is not None:
        rgb[boundary] = BOUNDARY_COLOUR
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="TIFF")


def _write_tiff(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="TIFF")


def _isprs_tile(height: int, width: int, seed: int) -> dict[str, np.ndarray]:
    ids = pattern_ids(height, width, 6, offset=seed)
    boundary = boundary_of(ids)
    eroded = ids.copy()
    eroded[boundary] = 255
    return {"ids": ids, "boundary": boundary, "eroded_ids": eroded}


# Where the label archives' bare files land: the tidy folders, the root ("unzip into one
# folder"), or a folder named after each archive (what many unzip tools create).
VAIHINGEN_LABEL_LAYOUTS = {
    "documented": ("ground_truth", "ground_truth_eroded"),
    "root": (".", "."),
    "archive": (
        "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE",
        "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE",
    ),
}
POTSDAM_LABEL_LAYOUTS = {
    "documented": ("5_Labels_all", "5_Labels_all_noBoundary"),
    "root": (".", "."),
}


def write_vaihingen_fixture(
    root: Path, tiles: dict[str, tuple[int, int]] | None = None, layout: str = "documented"
) -> dict[str, dict[str, Any]]:
    """Write Vaihingen tiles under ``root`` (top/ and the labels as ``layout`` places them).

    Args:
        root: the data root (created).
        tiles: tile id -> (height, width); default :data:`VAIHINGEN_TILES`.
        layout: a key of :data:`VAIHINGEN_LABEL_LAYOUTS`.

    Returns tile id -> {"image": (H, W, 3) IRRG uint8, "ids": (H, W) train ids,
    "eroded_ids": ids with boundary pixels 255, "boundary": bool (H, W), "name": file stem}.
    """
    written = {}
    for seed, (tile, (height, width)) in enumerate((tiles or VAIHINGEN_TILES).items()):
        name = f"top_mosaic_09cm_area{tile}"
        data = _isprs_tile(height, width, seed)
        data["image"] = random_image(height, width, seed)
        data["name"] = name
        _write_tiff(root / "top" / f"{name}.tif", data["image"])
        full, eroded = VAIHINGEN_LABEL_LAYOUTS[layout]
        write_colour_label(root / full / f"{name}.tif", data["ids"])
        write_colour_label(root / eroded / f"{name}_noBoundary.tif", data["ids"], data["boundary"])
        written[tile] = data
    return written


def write_potsdam_fixture(
    root: Path,
    tiles: tuple[str, ...] = POTSDAM_TILES,
    size: tuple[int, int] = POTSDAM_SIZE,
    layout: str = "documented",
) -> dict[str, dict[str, Any]]:
    """Write Potsdam tiles under ``root`` (2_Ortho_RGB/, 3_Ortho_IRRG/ and the labels as
    ``layout`` of :data:`POTSDAM_LABEL_LAYOUTS` places them), all of one ``size`` like the real
    6000x6000 tiles.

    Returns tile id -> {"rgb", "irrg": (H, W, 3) uint8, "ids", "eroded_ids", "boundary",
    "name"} (see :func:`write_vaihingen_fixture`).
    """
    height, width = size
    written = {}
    for seed, tile in enumerate(tiles):
        name = f"top_potsdam_{tile}"
        data = _isprs_tile(height, width, seed)
        data["rgb"] = random_image(height, width, 100 + seed)
        data["irrg"] = random_image(height, width, 200 + seed)
        data["name"] = name
        _write_tiff(root / "2_Ortho_RGB" / f"{name}_RGB.tif", data["rgb"])
        _write_tiff(root / "3_Ortho_IRRG" / f"{name}_IRRG.tif", data["irrg"])
        full, eroded = POTSDAM_LABEL_LAYOUTS[layout]
        write_colour_label(root / full / f"{name}_label.tif", data["ids"])
        write_colour_label(
            root / eroded / f"{name}_label_noBoundary.tif",
            data["ids"],
            data["boundary"],
        )
        written[tile] = data
    return written


def write_loveda_fixture(root: Path, size: tuple[int, int] = LOVEDA_SIZE) -> dict[str, Any]:
    """Write LoveDA under ``root``: {Train,Val,Test}/{Urban,Rural}/images_png (+ masks_png).

    Masks hold the raw values 0..7 (0 = no data: every mask has a band of 0s in its first
    rows). Returns image number -> {"image": (H, W, 3) uint8, "values": raw mask values or
    None for Test, "ids": train ids (0 -> 255, v -> v - 1) or None, "split": folder,
    "domain": domain}.
    """
    height, width = size
    written: dict[str, Any] = {}
    seed = 0
    for folder, domains in LOVEDA_IMAGES.items():
        for domain, numbers in domains.items():
            base = root / folder / domain
            (base / "images_png").mkdir(parents=True, exist_ok=True)
            for number in numbers:
                seed += 1
                image = random_image(height, width, 300 + seed)
                Image.fromarray(image).save(base / "images_png" / f"{number}.png")
                values = ids = None
                if folder != "Test":
                    values = pattern_ids(height, width, 8, offset=seed)  # 0..7
                    values[: 2 + seed % 3] = 0  # a no-data band
                    ids = np.where(values == 0, 255, values - 1).astype(np.uint8)
                    (base / "masks_png").mkdir(parents=True, exist_ok=True)
                    Image.fromarray(values).save(base / "masks_png" / f"{number}.png")
                written[number] = {
                    "image": image,
                    "values": values,
                    "ids": ids,
                    "split": folder,
                    "domain": domain,
                }
    return written
