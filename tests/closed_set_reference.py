"""An independent NumPy scorer for closed-set checks: it predicts every item of a data set with
the model (sliding windows, as the evaluation does) and scores the class ids with its own
confusion matrix, so a test can compare what the training loop or the benchmark reports with
numbers that do not come from ``btdnet.metrics``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bicor.evaluation import predict_logits


def confusion(pairs: list[tuple[np.ndarray, np.ndarray]], k: int, ignore: int) -> np.ndarray:
    """(K, K) counts, rows ground truth, columns prediction, ``ignore`` pixels skipped."""
    matrix = np.zeros((k, k), dtype=np.int64)
    for pred, gt in pairs:
        keep = gt != ignore
        np.add.at(matrix, (gt[keep].astype(np.int64), pred[keep].astype(np.int64)), 1)
    return matrix


def scores_from_confusion(matrix: np.ndarray, eval_classes: Sequence[int]) -> dict[str, Any]:
    """IoU per class (None when the class is in neither map), mIoU over ``eval_classes``
    (undefined classes left out) and OA over every class, as percentages."""
    tp = np.diag(matrix).astype(float)
    union = matrix.sum(0) + matrix.sum(1) - tp
    iou = [None if u == 0 else 100.0 * t / u for t, u in zip(tp, union)]
    defined = [iou[c] for c in eval_classes if iou[c] is not None]
    return {
        "IoU": iou,
        "mIoU": float(np.mean(defined)) if defined else 0.0,
        "OA": 100.0 * tp.sum() / matrix.sum(),
        "pixels": int(matrix.sum()),
    }


@torch.no_grad()
def reference_scores(
    model: torch.nn.Module,
    dataset: Any,
    eval_classes: Sequence[int],
    *,
    window: int | None = None,
    stride: int | None = None,
    border: str = "clamp",
) -> dict[str, Any]:
    """Score ``model`` (a BiCoRSeg) on every item of ``dataset`` without btdnet.metrics."""
    model.eval()
    pairs = []
    for index in range(len(dataset)):
        item = dataset[index]
        pixels = item["pixel_values"][None]
        logits = predict_logits(model, pixels, window=window, stride=stride, border=border)
        pairs.append((logits[0].argmax(0).numpy(), item["mask"].numpy()))
    k = model.config.num_classes
    result = scores_from_confusion(confusion(pairs, k, model.config.ignore_index), eval_classes)
    result["images"] = len(pairs)
    return result
