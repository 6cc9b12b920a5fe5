"""Prediction mask files: naming, writing, reading, and scoring a folder of them.

A prediction is a single-channel PNG at the image's ORIGINAL size, 0 for background and 255
for the referred object, named ``<sample_id>.png``: RRSIS-D ``<ref_id>-<sent_id>.png``,
RefSegRS ``<line>-<image_id>.png`` (the data layer's ``sample_id`` follows this). When reading,
any nonzero value is foreground; L, P, RGB, RGBA and LA files are accepted (alpha ignored).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from btdnet.errors import one_line
from btdnet.metrics.generalized import GeneralizedMetrics
from btdnet.safe_write import atomic_output

PROTOCOLS: tuple[str, ...] = ("lavt", "original")


def check_protocol(protocol: str) -> None:
    """Raise ``ValueError`` unless ``protocol`` is ``"lavt"`` or ``"original"``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; choose one of {PROTOCOLS}")


def dataset_split(dataset: Any) -> str | None:
    """The split of a referring dataset: its ``split`` attribute, else its records' one split."""
    split = getattr(dataset, "split", None)
    if split is not None:
        return str(split)
    splits = {getattr(record, "split", None) for record in getattr(dataset, "records", [])}
    return str(splits.pop()) if len(splits) == 1 and None not in splits else None


def is_generalized_set(dataset: Any) -> bool:
    """Whether ``dataset`` is a generalized-referring set (gRefCOCO format): its loader counted
    no-target expressions (``stats.no_target`` set, even to 0). Such a set is always reported
    with ReLA's metrics, as ReLA's evaluator does."""
    return getattr(getattr(dataset, "stats", None), "no_target", None) is not None


def prediction_filename(sample_id: str) -> str:
    """File name of the prediction of one sample: ``<sample_id>.png``."""
    if not sample_id or "/" in sample_id or "\\" in sample_id or sample_id in (".", ".."):
        raise ValueError(f"sample_id {sample_id!r} cannot be used as a file name")
    return f"{sample_id}.png"


def write_prediction(mask: np.ndarray | torch.Tensor, path: str | Path) -> None:
    """Write a (H, W) bool/0-1 mask as a 0/255 PNG through ``btdnet.safe_write.atomic_output``
    (temp file + rename; a link or a folder at ``path`` is refused)."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"{path}: a prediction mask must be (H, W), got shape {array.shape}")
    image = Image.fromarray(np.where(array != 0, 255, 0).astype(np.uint8), mode="L")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")


def read_prediction(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a prediction PNG as a bool (H, W) mask; nonzero is foreground.

    Args:
        path: the PNG file.
        size: optional target ``(H, W)``; a file of another size is resized with nearest.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                if image.mode in ("RGBA", "LA", "PA"):
                    image = image.convert("RGB" if image.mode == "RGBA" else "L")
                array = np.asarray(image)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ValueError(
            f"{path}: cannot read the prediction mask (too many pixels, a decompression bomb?)"
        ) from error
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, struct.error ...
        reason = one_line(error, first=True)
        raise ValueError(f"{path}: cannot read the prediction mask ({reason})") from error
    if array.ndim == 3:
        array = array.any(axis=2)
    elif array.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel or RGB mask, got shape {array.shape}")
    mask = array != 0
    if size is not None and tuple(mask.shape) != tuple(size):
        mask = resize_mask(mask, size)
    return mask


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool (h, w) mask resized (nearest) to ``size`` = (H, W)."""
    resized = Image.fromarray(mask.astype(np.uint8) * 255, mode="L").resize(
        (int(size[1]), int(size[0])), Image.NEAREST
    )
    return np.asarray(resized) != 0


class MisSizedPredictionWarning(UserWarning):
    """A prediction file is not at its image's original size (it is resized to be scored)."""


def _size_problem(path: Path, mask_shape: tuple[int, ...], image_shape: tuple[int, ...]) -> str:
    (mh, mw), (ih, iw) = mask_shape, image_shape
    hint = " (transposed?)" if (mh, mw) == (iw, ih) else ""
    return f"{path}: the mask is {mw}x{mh}, its image {iw}x{ih}{hint}"


def _read_at(
    path: Path, image_shape: tuple, shape: tuple, *, strict: bool, mis_sized: list[str]
) -> np.ndarray:
    """Read a prediction, check it is at the image's size (refuse or note it), resize to shape."""
    pred = read_prediction(path)
    if pred.shape != image_shape:
        problem = _size_problem(path, pred.shape, image_shape)
        if strict:
            raise ValueError(f"{problem}; prediction files must be at the image's size")
        mis_sized.append(problem)
    return pred if pred.shape == shape else resize_mask(pred, shape)


def score_prediction_files(
    dataset: Any, predictions_dir: str | Path, protocol: str = "lavt", *, strict: bool = False
) -> dict[str, Any]:
    """Score a folder of ``<sample_id>.png`` predictions against a referring dataset.

    Args:
        dataset: a ``ReferringDataset`` (``records``, ``original_mask``, items with ``mask``);
            it may be built with ``tokenizer=None``.
        predictions_dir: folder holding one PNG per sample.
        protocol: ``"lavt"`` scores at the dataset's image size against the item's resized
            mask (the PNG resized with nearest); ``"original"`` scores at the original image
            size against ``dataset.original_mask`` (a mis-sized PNG resized with nearest).
        strict: refuse (``ValueError``) a prediction that is not at its image's original
            size; without it such files are resized, counted in ``mis_sized`` and reported by
            one :class:`MisSizedPredictionWarning` naming the first.

    An all-zero PNG is the answer "no target" (generalized referring); no-target samples are
    the records' ``no_target`` ones.

    Returns:
        :meth:`GeneralizedMetrics.report`'s dict (the classic LAVT dict for sets without
        no-target samples) plus ``protocol`` and ``split`` (when the dataset knows it).

    Raises:
        FileNotFoundError: a prediction is missing; the message names the first missing file
            and how many are missing in total.
    """
    check_protocol(protocol)
    folder = Path(predictions_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: predictions folder does not exist")
    count = len(dataset)
    sample_ids = [str(dataset.records[i].sample_id) for i in range(count)]
    missing = [sid for sid in sample_ids if not (folder / prediction_filename(sid)).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder / prediction_filename(missing[0])}: prediction file missing "
            f"({len(missing)} of {count} predictions missing in {folder})"
        )
    metrics = GeneralizedMetrics()
    mis_sized: list[str] = []
    for index, sample_id in enumerate(sample_ids):
        path = folder / prediction_filename(sample_id)
        original = np.asarray(dataset.original_mask(index), dtype=bool)
        if protocol == "original":
            gt = original
        else:
            gt = dataset[index]["mask"]
            gt = gt.numpy() if isinstance(gt, torch.Tensor) else np.asarray(gt)
            gt = gt != 0
        pred = _read_at(path, original.shape, gt.shape, strict=strict, mis_sized=mis_sized)
        record = dataset.records[index]
        metrics.update(
            pred,
            gt,
            no_target=bool(getattr(record, "no_target", False)),
            category=getattr(record, "category", None),
            gt_area_original=int(original.sum()),
            sample_id=sample_id,
        )
    result = metrics.report(generalized=is_generalized_set(dataset))
    result["protocol"] = protocol
    result["mis_sized"] = len(mis_sized)
    if mis_sized:
        warnings.warn(
            f"{len(mis_sized)} of {count} prediction files are not at their image's size and "
            f"were resized to be scored (--strict refuses them); first: {mis_sized[0]}",
            MisSizedPredictionWarning,
            stacklevel=2,
        )
    split = dataset_split(dataset)
    if split is not None:
        result["split"] = split
    return result


__all__ = [
    "PROTOCOLS",
    "MisSizedPredictionWarning",
    "check_protocol",
    "dataset_split",
    "is_generalized_set",
    "prediction_filename",
    "read_prediction",
    "score_prediction_files",
    "write_prediction",
]
