"""Referring-segmentation metrics under the LAVT protocol: oIoU, mIoU and Pr@X.

Every expression is one sample. Per sample, ``I = |pred AND gt|`` and ``U = |pred OR gt|``
(pixel counts at whatever resolution the caller scores at). Over a set of samples:

- ``oIoU`` = 100 * sum(I) / sum(U) (cumulative, dominated by large objects);
- ``mIoU`` = 100 * mean(I / U), a sample with ``U = 0`` counting as IoU 0;
- ``Pr@X`` = 100 * share of samples with ``IoU >= X`` for X in 0.5 ... 0.9. The comparison is
  done exactly on integers (``I * den >= num * U`` with ``X = num / den``), so a sample with
  I = 7 and U = 10 counts at Pr@0.7 whatever float rounding would say.

Empty union (empty prediction and empty ground truth): the sample adds 0 to both oIoU sums,
counts as IoU 0 in mIoU and fails every Pr@X. This is the convention of LAVT's evaluation code
and its successors; it penalises a model that predicts nothing for an empty target.

Size buckets follow COCO's area thresholds on the ground-truth mask area measured at the
ORIGINAL image resolution: ``small`` < 32**2 pixels, ``medium`` < 96**2, ``large`` otherwise;
an empty ground truth falls in ``small``.

Values in the dict returned by :meth:`ReferringMetrics.compute` are unrounded floats; reports
round them to two decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from btdnet.metrics.boundary import boundary_f

PR_THRESHOLDS: tuple[str, ...] = ("0.5", "0.6", "0.7", "0.8", "0.9")
"""Pr@X thresholds, as decimal strings so that they convert to exact fractions."""

PR_KEYS: tuple[str, ...] = tuple(f"Pr@{x}" for x in PR_THRESHOLDS)
METRIC_KEYS: tuple[str, ...] = ("oIoU", "mIoU", *PR_KEYS)
SIZE_BUCKETS: tuple[str, ...] = ("small", "medium", "large")
SMALL_AREA = 32**2
MEDIUM_AREA = 96**2


def size_bucket(area: int) -> str:
    """COCO size bucket of a ground-truth area (pixels at the original resolution)."""
    if area < 0:
        raise ValueError(f"size_bucket: area must be >= 0, got {area}")
    if area < SMALL_AREA:
        return "small"
    if area < MEDIUM_AREA:
        return "medium"
    return "large"


def as_bool_array(mask: np.ndarray | torch.Tensor) -> np.ndarray:
    """Convert a mask (numpy array or tensor, bool or 0/1) to a numpy bool array."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    array = np.asarray(mask)
    if array.dtype != np.bool_:
        array = array != 0
    return array


def intersection_union(
    pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor
) -> tuple[int, int]:
    """Return ``(|pred AND gt|, |pred OR gt|)`` for two masks of equal shape."""
    pred_b = as_bool_array(pred)
    gt_b = as_bool_array(gt)
    if pred_b.shape != gt_b.shape:
        raise ValueError(
            f"ReferringMetrics: prediction shape {pred_b.shape} differs from ground-truth "
            f"shape {gt_b.shape}; resize the prediction to the scored resolution first"
        )
    intersection = int(np.logical_and(pred_b, gt_b).sum())
    union = int(np.logical_or(pred_b, gt_b).sum())
    return intersection, union


@dataclass(frozen=True)
class SampleStats:
    """Statistics of one scored sample."""

    intersection: int
    union: int
    category: str | None
    size_bucket: str
    sample_id: str | None = None
    boundary_f: float | None = None

    @property
    def iou(self) -> float:
        """IoU of the sample; 0.0 when the union is empty."""
        return self.intersection / self.union if self.union > 0 else 0.0


def _summarise(samples: list[SampleStats]) -> dict[str, Any]:
    """oIoU, mIoU and Pr@X (percentages, unrounded) of a non-empty list of samples."""
    inter = np.array([s.intersection for s in samples], dtype=np.int64)
    union = np.array([s.union for s in samples], dtype=np.int64)
    total_union = int(union.sum())
    o_iou = 100.0 * float(inter.sum()) / total_union if total_union > 0 else 0.0
    ious = np.divide(
        inter.astype(np.float64),
        union.astype(np.float64),
        out=np.zeros(len(samples), dtype=np.float64),
        where=union > 0,
    )
    result: dict[str, Any] = {
        "samples": len(samples),
        "oIoU": o_iou,
        "mIoU": 100.0 * float(ious.mean()),
    }
    for key, threshold in zip(PR_KEYS, PR_THRESHOLDS):
        fraction = Fraction(threshold)
        passed = sum(
            1
            for s in samples
            if s.union > 0 and s.intersection * fraction.denominator >= fraction.numerator * s.union
        )
        result[key] = 100.0 * passed / len(samples)
    boundary = [s.boundary_f for s in samples]
    if all(f is not None for f in boundary):
        result["BF"] = 100.0 * float(np.mean(boundary))
    return result


class ReferringMetrics:
    """Accumulates per-sample intersection/union and reports oIoU, mIoU, Pr@X.

    Follows the evaluator pattern: :meth:`reset`, :meth:`update` per sample (or
    :meth:`update_stats` with statistics gathered elsewhere, e.g. across processes), then
    :meth:`compute`.
    """

    def __init__(self) -> None:
        self._samples: list[SampleStats] = []

    def reset(self) -> None:
        """Forget every sample seen so far."""
        self._samples = []

    def __len__(self) -> int:
        return len(self._samples)

    def update(
        self,
        pred: np.ndarray | torch.Tensor,
        gt: np.ndarray | torch.Tensor,
        *,
        category: str | None = None,
        gt_area_original: int | None = None,
        sample_id: str | None = None,
    ) -> None:
        """Score one sample.

        Args:
            pred: predicted mask (H, W), bool or 0/1 (numpy array or tensor).
            gt: ground-truth mask of the same shape.
            category: category name for the per-category table; ``None`` or ``""`` leaves
                the sample out of ``per_category`` (it still counts everywhere else).
            gt_area_original: ground-truth area at the original image resolution, used for
                the size bucket; when ``None`` the area of ``gt`` itself is used (exact when
                scoring at the original resolution).
            sample_id: optional identifier kept with the sample (see :meth:`sample_ious`).
        """
        intersection, union = intersection_union(pred, gt)
        area = int(as_bool_array(gt).sum()) if gt_area_original is None else gt_area_original
        self.update_stats(intersection, union, category, size_bucket(int(area)), sample_id)

    def update_stats(
        self,
        intersection: int,
        union: int,
        category: str | None,
        size_bucket: str,
        sample_id: str | None = None,
        boundary: Sequence[int] | None = None,
    ) -> None:
        """Add one sample from precomputed statistics (e.g. gathered from other processes).

        ``boundary``: the sample's four boundary counts (:func:`~btdnet.metrics.boundary.
        boundary_counts`); when every sample has them, ``compute`` also reports ``BF``, the mean
        boundary F-score in percent.
        """
        intersection, union = int(intersection), int(union)
        if intersection < 0 or union < intersection:
            raise ValueError(
                f"ReferringMetrics.update_stats: need 0 <= intersection <= union, "
                f"got intersection={intersection}, union={union}"
            )
        if size_bucket not in SIZE_BUCKETS:
            raise ValueError(
                f"ReferringMetrics.update_stats: size_bucket must be one of {SIZE_BUCKETS}, "
                f"got {size_bucket!r}"
            )
        self._samples.append(
            SampleStats(
                intersection,
                union,
                category or None,
                size_bucket,
                sample_id,
                None if boundary is None else boundary_f(*(int(n) for n in boundary)),
            )
        )

    def sample_ious(self) -> list[tuple[str | None, float]]:
        """``(sample_id, IoU)`` of every sample, in the order they were added."""
        return [(s.sample_id, s.iou) for s in self._samples]

    def compute(self) -> dict[str, Any]:
        """Return the metrics as percentages (unrounded floats).

        Keys: ``samples``, ``oIoU``, ``mIoU``, ``Pr@0.5`` ... ``Pr@0.9``, ``per_category``
        ``{name: {samples, oIoU, mIoU, Pr@...}}`` (sorted by name) and ``per_size``
        ``{small|medium|large: {...}}`` (only the buckets that hold samples).

        Raises:
            ValueError: when no sample has been added.
        """
        if not self._samples:
            raise ValueError("ReferringMetrics.compute: no samples were added")
        result = _summarise(self._samples)
        categories = sorted({s.category for s in self._samples if s.category})
        result["per_category"] = {
            name: _summarise([s for s in self._samples if s.category == name])
            for name in categories
        }
        result["per_size"] = {
            bucket: _summarise([s for s in self._samples if s.size_bucket == bucket])
            for bucket in SIZE_BUCKETS
            if any(s.size_bucket == bucket for s in self._samples)
        }
        return result
