"""Closed-set prediction files: write them, read them, score a folder of them.

So that any model's output can be scored under the toolkit's protocols
(``scripts/benchmark.py --task seg --predictions DIR``), a prediction is one file per image of
the split, named after the image file's stem (``top_mosaic_09cm_area2.png``,
``top_potsdam_2_13_RGB.png``, LoveDA ``4191.png``), holding class indices in the toolkit's class
order (``0 .. K-1``, the order of ``closed_set_protocol(...).class_names``):

- a single-band PNG or TIFF (8- or 16-bit), or a palette PNG whose stored indices are the class
  ids (what ``--save-predictions`` writes: it also shows in the dataset's colours);
- or a colour PNG/TIFF in the dataset's palette (ISPRS and LoveDA colours), mapped back to ids;
  a colour outside the palette is an error naming the file and the colour.

Each file must have its image's size; a missing, extra (a .png/.tif/.tiff whose stem is no
image of the split), doubled (``x.png`` and ``x.tif``), mis-sized or out-of-range file is an
error naming the file. Scoring builds one confusion matrix over every labelled pixel, exactly as
the checkpoint path (``bicor.evaluation.evaluate_closed_set``) does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bicor.data.errors import ClosedSetDataError
from bicor.data.palettes import Palette, colour_to_ids, get_palette
from btdnet.metrics.confusion import ConfusionMatrix
from btdnet.safe_write import atomic_output

PREDICTION_SUFFIXES = (".png", ".tif", ".tiff")
_SINGLE_BAND_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L")


class PredictionFileError(ClosedSetDataError):
    """A prediction file is missing, extra, unreadable, mis-sized or holds a bad class id."""


def dataset_palette(dataset_name: str) -> Palette | None:
    """The colour palette of ``dataset_name``, or None when it has none (synthetic set)."""
    try:
        return get_palette(dataset_name)
    except (KeyError, ValueError):
        return None


def image_stems(dataset: Any) -> list[str]:
    """Per item of an eval-mode closed-set dataset, its image file's stem (unique)."""
    records = getattr(dataset, "records", None)
    if records is not None:
        stems = [Path(record.image_path).stem for record in records]
    else:
        stems = [str(s) for s in dataset.sample_ids]  # synthetic set: ids are the image stems
    seen: set[str] = set()
    for stem in stems:
        if stem in seen:
            raise PredictionFileError(
                f"two images of the split are named {stem}: prediction files would collide"
            )
        seen.add(stem)
    return stems


def sample_stems(dataset: Any) -> dict[str, str]:
    """``sample_id`` of each eval item -> its image stem (the prediction file's name)."""
    stems = image_stems(dataset)
    records = getattr(dataset, "records", None)
    ids = [r.tile_id for r in records] if records is not None else list(dataset.sample_ids)
    return dict(zip(ids, stems))


def write_class_prediction(ids: np.ndarray, path: str | Path, palette: Palette | None) -> Path:
    """Write (H, W) class ids as an 8-bit PNG through ``btdnet.safe_write.atomic_output``.

    With a ``palette`` the PNG is indexed ("P"): the stored values are the ids and viewers show
    the dataset's colours; without one it is greyscale ("L").
    """
    path = Path(path)
    array = np.asarray(ids)
    if array.ndim != 2 or (array.size and (array.min() < 0 or array.max() > 255)):
        raise ValueError(f"{path}: expected (H, W) class ids in 0..255, got shape {array.shape}")
    image = Image.fromarray(array.astype(np.uint8), mode="L")
    if palette is not None:
        image.putpalette(palette.lookup_table().ravel().tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def read_class_prediction(
    path: str | Path, *, num_classes: int, size: tuple[int, int], palette: Palette | None
) -> np.ndarray:
    """Read one prediction file as (H, W) int64 class ids, checked against ``size`` and K."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in _SINGLE_BAND_MODES:
                ids = np.asarray(image).astype(np.int64)  # "P": stored indices are the ids
            elif mode in ("LA", "PA"):
                ids = np.asarray(image.getchannel(0)).astype(np.int64)
            elif mode in ("RGB", "RGBA"):
                if palette is None:
                    raise PredictionFileError(
                        f"{path}: a colour prediction needs the dataset's palette; this dataset "
                        "has none: write single-band class ids"
                    )
                ids = colour_to_ids(
                    np.asarray(image.convert("RGB")),
                    palette,
                    source=str(path),
                    boundary_is_ignore=False,
                ).astype(np.int64)
            else:
                raise PredictionFileError(
                    f"{path}: Pillow mode {mode!r} is not a class-id map (single-band integer, "
                    "palette or colour image expected)"
                )
    except Image.DecompressionBombError as error:
        raise PredictionFileError(
            f"{path}: cannot read the prediction (too many pixels, a decompression bomb?)"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise PredictionFileError(f"{path}: cannot read the prediction ({error})") from error
    if tuple(ids.shape) != tuple(size):
        raise PredictionFileError(
            f"{path}: prediction is {ids.shape[0]}x{ids.shape[1]} (HxW) but its image is "
            f"{size[0]}x{size[1]}; write predictions at the image's size"
        )
    bad = (ids < 0) | (ids >= num_classes)
    if bad.any():
        found = np.unique(ids[bad])[:5].tolist()
        raise PredictionFileError(
            f"{path}: class ids must be 0..{num_classes - 1}, found {found} "
            f"({int(bad.sum())} pixels)"
        )
    return ids


def _index_folder(folder: Path) -> dict[str, Path]:
    """stem -> prediction file in ``folder`` (hidden files skipped; a doubled stem is an error)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in PREDICTION_SUFFIXES:
            continue
        if path.stem in found:
            raise PredictionFileError(
                f"{path}: two predictions for one image ({found[path.stem].name} and {path.name})"
            )
        found[path.stem] = path
    return found


def match_prediction_files(folder: str | Path, stems: Sequence[str]) -> list[Path]:
    """The prediction file of each stem, in order; missing or extra files raise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: predictions folder does not exist")
    found = _index_folder(folder)
    missing = [stem for stem in stems if stem not in found]
    if missing:
        raise FileNotFoundError(
            f"{folder / (missing[0] + '.png')}: prediction file missing ({len(missing)} of "
            f"{len(stems)} images have none in {folder}; names are the image files' stems)"
        )
    extra = sorted(set(found) - set(stems))
    if extra:
        raise PredictionFileError(
            f"{found[extra[0]]}: no image of the split is named {extra[0]} ({len(extra)} extra "
            f"prediction file(s) in {folder}; is it the right split?)"
        )
    return [found[stem] for stem in stems]


def _ground_truth(dataset: Any, index: int) -> np.ndarray:
    """(H, W) label ids of eval item ``index`` without normalising its image."""
    if hasattr(dataset, "read_tile"):
        return np.array(dataset.read_tile(index)[1])  # a copy: tiles may be read-only maps
    if hasattr(dataset, "load"):
        return np.array(dataset.load(index)[1])
    return np.asarray(dataset[index]["mask"])


def score_seg_prediction_files(
    dataset: Any,
    folder: str | Path,
    *,
    class_names: Sequence[str],
    eval_classes: Sequence[int | str] | None,
    palette: Palette | None,
    ignore_index: int = 255,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Score a folder of prediction files against an eval-mode closed-set dataset.

    Returns ``ConfusionMatrix.compute`` output plus ``images`` (the keys of
    ``bicor.evaluation.evaluate_closed_set``).
    """
    from tqdm.auto import tqdm

    paths = match_prediction_files(folder, image_stems(dataset))
    matrix = ConfusionMatrix(len(class_names), ignore_index=ignore_index)
    for index, path in enumerate(tqdm(paths, desc="score", disable=not show_progress)):
        target = _ground_truth(dataset, index)  # (H, W)
        pred = read_class_prediction(
            path, num_classes=len(class_names), size=target.shape[:2], palette=palette
        )
        matrix.update(pred, target)
    result = matrix.compute(list(class_names), eval_classes)
    result["images"] = len(paths)
    return result


__all__ = [
    "PREDICTION_SUFFIXES",
    "PredictionFileError",
    "dataset_palette",
    "image_stems",
    "match_prediction_files",
    "read_class_prediction",
    "sample_stems",
    "score_seg_prediction_files",
    "write_class_prediction",
]
