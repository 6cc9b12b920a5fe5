"""Closed-set segmentation metrics from one confusion matrix (GeoSeg protocol, evaluation.md).

One K x K matrix is accumulated over every labelled pixel of every tile (rows: ground truth,
columns: prediction); pixels whose ground truth is ``ignore_index`` are excluded. From it, per
class ``c`` with ``tp = M[c, c]``, ``fp = sum(M[:, c]) - tp``, ``fn = sum(M[c, :]) - tp``:

- IoU = tp / (tp + fp + fn), precision = tp / (tp + fp), recall = tp / (tp + fn),
  F1 = 2 precision recall / (precision + recall) = 2 tp / (2 tp + fp + fn) when tp > 0;
- a class with no true positive has **no F1** (undefined, as the 0/0 of GeoSeg's ``Evaluator``
  and mmseg's ``f_score`` gives NaN there), even when it has false positives or negatives;
  its IoU is 0 then (undefined only when the class is absent from ground truth and prediction);
- mIoU and mF1 = means over the protocol's evaluation classes of the defined values (an
  undefined value is left out, as the peers' ``nanmean`` does);
- OA = trace(M) / sum(M), over all classes.

All values are percentages (unrounded floats). An undefined per-class value is ``None``.

Which classes enter the means is the closed-set path's business:
:func:`bicor.protocols.closed_set_protocol`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def _as_tensor(values: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach()
    return torch.from_numpy(np.ascontiguousarray(values))


def _percent(num: int, den: int) -> float | None:
    return None if den == 0 else 100.0 * num / den


def confusion_counts(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    *,
    num_classes: int,
    ignore_index: int = 255,
) -> torch.Tensor:
    """(K, K) int64 counts (rows: ground truth, columns: prediction) of one batch, on the
    prediction's device; pixels whose ground truth is ``ignore_index`` are skipped."""
    pred_t = _as_tensor(pred)
    target_t = _as_tensor(target).to(pred_t.device)
    if pred_t.shape != target_t.shape:
        raise ValueError(
            f"prediction shape {tuple(pred_t.shape)} != target shape {tuple(target_t.shape)}"
        )
    pred_t = pred_t.reshape(-1).long()  # (P,)
    target_t = target_t.reshape(-1).long()  # (P,)
    keep = target_t != ignore_index
    pred_t, target_t = pred_t[keep], target_t[keep]
    k = num_classes
    if pred_t.numel() == 0:
        return torch.zeros((k, k), dtype=torch.int64, device=pred_t.device)
    if int(target_t.min()) < 0 or int(target_t.max()) >= k:
        raise ValueError(f"ground truth holds ids outside [0, {k}) and != ignore_index")
    if int(pred_t.min()) < 0 or int(pred_t.max()) >= k:
        raise ValueError(f"prediction holds ids outside [0, {k})")
    return torch.bincount(target_t * k + pred_t, minlength=k * k).reshape(k, k)  # (K, K)


class ConfusionMatrix:
    """Accumulates a (K, K) int64 confusion matrix (rows: ground truth, columns: prediction).

    Args:
        num_classes: K.
        ignore_index: ground-truth value of unlabelled pixels (not counted).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros((num_classes, num_classes), dtype=torch.int64)

    def reset(self) -> None:
        self.matrix.zero_()

    def update(self, pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> None:
        """Add a batch: ``pred`` and ``target`` hold class ids of the same shape (any layout).

        Ground-truth ``ignore_index`` pixels are skipped; any other ground-truth value outside
        [0, K), or any predicted id outside [0, K), raises ``ValueError``.
        """
        counts = confusion_counts(
            pred, target, num_classes=self.num_classes, ignore_index=self.ignore_index
        )
        self.matrix += counts.cpu()

    def add_matrix(self, matrix: np.ndarray | torch.Tensor) -> None:
        """Add another (K, K) matrix (e.g. one reduced over processes)."""
        other = _as_tensor(matrix).cpu().long()
        if other.shape != self.matrix.shape:
            raise ValueError(f"matrix shape {tuple(other.shape)} != {tuple(self.matrix.shape)}")
        self.matrix += other

    def compute(
        self,
        class_names: Sequence[str] | None = None,
        eval_classes: Sequence[int | str] | None = None,
    ) -> dict[str, Any]:
        """Metrics as percentages.

        Args:
            class_names: K names (default ``class_0`` ...).
            eval_classes: indices or names of the classes that enter mIoU / mF1 (default: all).

        Returns:
            ``{"mIoU", "mF1", "OA", "pixels", "eval_classes", "per_class"}`` with ``per_class``
            ``{name: {"IoU", "F1", "precision", "recall"}}``. Means are 0.0 when no evaluation
            class is defined (nothing counted).
        """
        k = self.num_classes
        names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(k)]
        if len(names) != k:
            raise ValueError(f"got {len(names)} class names for {k} classes")
        if eval_classes is None:
            eval_idx = list(range(k))
        else:
            eval_idx = [names.index(c) if isinstance(c, str) else int(c) for c in eval_classes]
            if any(i < 0 or i >= k for i in eval_idx):
                raise ValueError(f"eval_classes {list(eval_classes)} outside [0, {k})")
        m = self.matrix
        tp = m.diag()
        fp = m.sum(dim=0) - tp
        fn = m.sum(dim=1) - tp
        per_class: dict[str, dict[str, float | None]] = {}
        ious: list[float | None] = []
        f1s: list[float | None] = []
        for i, name in enumerate(names):
            t, p, n = int(tp[i]), int(fp[i]), int(fn[i])
            iou = _percent(t, t + p + n)
            f1 = _percent(2 * t, 2 * t + p + n) if t > 0 else None  # peers: 0/0 = NaN
            ious.append(iou)
            f1s.append(f1)
            per_class[name] = {
                "IoU": iou,
                "F1": f1,
                "precision": _percent(t, t + p),
                "recall": _percent(t, t + n),
            }

        def mean(values: list[float | None]) -> float:
            defined = [values[i] for i in eval_idx if values[i] is not None]
            return float(sum(defined) / len(defined)) if defined else 0.0

        total = int(m.sum())
        return {
            "mIoU": mean(ious),
            "mF1": mean(f1s),
            "OA": _percent(int(tp.sum()), total) or 0.0,
            "pixels": total,
            "eval_classes": [names[i] for i in eval_idx],
            "per_class": per_class,
        }
