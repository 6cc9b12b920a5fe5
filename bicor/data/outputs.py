"""Write closed-set predictions for users: colour maps and the LoveDA test submission.

- :func:`write_colour_prediction`: class ids drawn in the dataset's own palette. ``.png``
  files are palette (indexed) PNGs whose stored values are the class ids, so they read back
  as ids and show as the dataset's colours; ``.tif`` / ``.tiff`` files are 8-bit RGB TIFFs
  like the ISPRS colour labels. Ignored pixels (255) are drawn black.
- :func:`write_loveda_submission`: one PNG per test image with values 0..6, zipped flat
  (``<n>.png`` at the top of the archive), as the LoveDA evaluation server expects.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, features

from bicor.data.palettes import IGNORE_INDEX, Palette, get_palette, ids_to_colour
from btdnet.safe_write import atomic_output

LOVEDA_NUM_CLASSES = 7


def _as_ids(prediction: np.ndarray, *, name: str) -> np.ndarray:
    """A 2-D integer array (numpy or CPU tensor) as int64, or a ValueError naming it."""
    array = np.asarray(prediction)
    if array.ndim != 2:
        raise ValueError(f"{name}: prediction must be a 2-D (H, W) id map, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(f"{name}: prediction must hold integer class ids, got {array.dtype}")
    return array.astype(np.int64)


def _check_ids(ids: np.ndarray, palette: Palette, *, name: str, allow_ignore: bool) -> None:
    valid = (ids >= 0) & (ids < palette.num_classes)
    if allow_ignore:
        valid |= ids == IGNORE_INDEX
    if not valid.all():
        bad = np.unique(ids[~valid])[:10].tolist()
        allowed = f"0..{palette.num_classes - 1}" + (f" or {IGNORE_INDEX}" if allow_ignore else "")
        raise ValueError(f"{name}: class ids must be {allowed}, found {bad}")


def write_colour_prediction(ids: np.ndarray, path: str | Path, dataset: str) -> Path:
    """Save an (H, W) id map in ``dataset``'s palette as PNG (indexed) or TIFF (RGB).

    Args:
        ids: class ids ``0 .. K-1``, 255 for ignored pixels (drawn black).
        path: output file; its suffix (.png, .tif, .tiff) picks the format.
        dataset: "loveda", "vaihingen" or "potsdam".

    Returns the written path (parent folders are created).
    """
    path = Path(path)
    palette = get_palette(dataset)
    array = _as_ids(ids, name=str(path))
    _check_ids(array, palette, name=str(path), allow_ignore=True)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        image = Image.fromarray(array.astype(np.uint8))  # "L"; putpalette turns it into "P"
        image.putpalette(palette.lookup_table().ravel().tolist())
        with atomic_output(path) as tmp:
            image.save(tmp, format="PNG", optimize=False)
    elif suffix in (".tif", ".tiff"):
        compression = "tiff_lzw" if features.check("libtiff") else "raw"
        rgb = ids_to_colour(array, palette)  # (H, W, 3)
        with atomic_output(path) as tmp:
            Image.fromarray(rgb).save(tmp, format="TIFF", compression=compression)
    else:
        raise ValueError(f"{path}: unsupported prediction format {suffix!r}; use .png or .tif")
    return path


def _submission_name(key: str) -> str:
    name = Path(str(key)).name
    if name.lower().endswith(".png"):
        name = name[: -len(".png")]
    if not name:
        raise ValueError(f"invalid LoveDA image name {key!r}")
    return name


def write_loveda_submission(predictions: Mapping[str, np.ndarray], zip_path: str | Path) -> Path:
    """Zip LoveDA test predictions flat as ``<n>.png`` with class values 0..6.

    Args:
        predictions: image name (the test image's number, e.g. "4191"; a ".png" suffix or a
            folder part is dropped) -> (H, W) integer class ids 0..6.
        zip_path: the archive to write (replaced atomically).

    Raises ValueError for a non-2-D or non-integer map, a value outside 0..6 (ignore 255
    included: the server scores every pixel), or two predictions with one file name.
    """
    zip_path = Path(zip_path)
    palette = get_palette("loveda")
    entries: dict[str, np.ndarray] = {}
    for key, prediction in predictions.items():
        name = _submission_name(key)
        if name in entries:
            raise ValueError(f"two predictions are named {name}.png (from {key!r})")
        ids = _as_ids(prediction, name=f"{name}.png")
        _check_ids(ids, palette, name=f"{name}.png", allow_ignore=False)
        entries[name] = ids.astype(np.uint8)
    if not entries:
        raise ValueError("no predictions to write into the LoveDA submission")
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")
    order = sorted(entries, key=lambda n: (0, int(n), n) if n.isdigit() else (1, 0, n))
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in order:
                buffer = io.BytesIO()
                Image.fromarray(entries[name]).save(buffer, format="PNG")
                archive.writestr(f"{name}.png", buffer.getvalue())
        os.replace(partial, zip_path)
    finally:
        partial.unlink(missing_ok=True)
    return zip_path
