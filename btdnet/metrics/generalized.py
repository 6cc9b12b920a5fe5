"""Generalized referring metrics (GRES / gRefCOCO, ReLA's definitions), as percentages.

Liu, Ding & Jiang, "GRES: Generalized Referring Expression Segmentation", CVPR 2023 (ReLA).
Every expression is one sample; a sample is *no-target* when its expression refers to nothing
in the image (its ground truth is empty by definition) and *targeted* otherwise (one or several
objects: the ground truth is their union). The answer "no target" is an empty predicted mask
(a model with a presence head empties its mask when presence is below its threshold; a
prediction PNG with no foreground pixel is the same answer). Per sample ``I`` and ``U`` are the
pixel counts of ``pred AND gt`` and ``pred OR gt``.

- ``gIoU`` = mean over all samples of the per-sample IoU, where a no-target sample scores 1
  when answered empty and 0 otherwise (a targeted sample with an empty union scores 0);
- ``cIoU`` = sum(I) / sum(U) over all samples (a no-target sample answered non-empty adds its
  predicted area to U, one answered empty adds nothing);
- ``N_acc`` = no-target samples answered empty / no-target samples;
- ``T_acc`` = targeted samples answered non-empty / targeted samples;
- ``oIoU``, ``mIoU``, ``Pr@X``, ``per_category``, ``per_size``: the LAVT metrics of
  :class:`~btdnet.metrics.referring.ReferringMetrics` over the targeted samples only, so that a
  set without no-target samples gives exactly the numbers it gave before.

ReLA's current ``refer_evaluation.py`` computes the same plain ratios, ``TP / (TP + FN)`` and
``TN / (TN + FP)`` from its no-target confusion counts (its first release added 1 to the
denominators; that was fixed). Where a set has no no-target sample, ReLA writes 0 for both;
here both are ``None`` (printed "n/a"), as is ``T_acc`` for a set without a targeted sample,
and ``compute`` says why under ``"N_acc_note"`` / ``"T_acc_note"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from btdnet.metrics.referring import ReferringMetrics, as_bool_array, size_bucket

GENERALIZED_KEYS: tuple[str, ...] = ("gIoU", "cIoU", "N_acc", "T_acc")
# Why N_acc or T_acc has no value (ReLA's code writes 0 for both in that case).
NOT_APPLICABLE = "n/a: the set has no {kind} expression (ReLA's code writes 0 here)"


@dataclass(frozen=True)
class GeneralizedSample:
    """Statistics of one scored sample."""

    intersection: int
    union: int
    pred_area: int
    no_target: bool
    sample_id: str | None = None

    @property
    def iou(self) -> float:
        """Generalized IoU: a no-target sample scores 1 when answered empty, else 0; a
        targeted sample I / U (0 for an empty union)."""
        if self.no_target:
            return 1.0 if self.pred_area == 0 else 0.0
        return self.intersection / self.union if self.union > 0 else 0.0


class GeneralizedMetrics:
    """Accumulates samples and reports the generalized and the targeted metrics.

    Evaluator pattern: :meth:`reset`, :meth:`update` per sample (or :meth:`update_stats` with
    statistics gathered elsewhere), then :meth:`compute`.
    """

    def __init__(self) -> None:
        self._samples: list[GeneralizedSample] = []
        self.targeted = ReferringMetrics()

    def reset(self) -> None:
        """Forget every sample seen so far."""
        self._samples = []
        self.targeted.reset()

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def no_target_samples(self) -> int:
        return sum(1 for s in self._samples if s.no_target)

    def update(
        self,
        pred: np.ndarray | torch.Tensor,
        gt: np.ndarray | torch.Tensor,
        *,
        no_target: bool | None = None,
        category: str | None = None,
        gt_area_original: int | None = None,
        sample_id: str | None = None,
    ) -> None:
        """Score one sample from its masks (same shape, bool or 0/1).

        Args:
            no_target: the expression refers to nothing; None: "the ground truth is empty".
            category, gt_area_original, sample_id: as :meth:`ReferringMetrics.update`.
        """
        pred_b, gt_b = as_bool_array(pred), as_bool_array(gt)
        if pred_b.shape != gt_b.shape:
            raise ValueError(
                f"GeneralizedMetrics: prediction shape {pred_b.shape} differs from "
                f"ground-truth shape {gt_b.shape}"
            )
        intersection = int(np.logical_and(pred_b, gt_b).sum())
        union = int(np.logical_or(pred_b, gt_b).sum())
        gt_area = int(gt_b.sum())
        area = gt_area if gt_area_original is None else int(gt_area_original)
        self.update_stats(
            intersection,
            union,
            int(pred_b.sum()),
            no_target=gt_area == 0 if no_target is None else bool(no_target),
            category=category,
            size_bucket=size_bucket(area),
            sample_id=sample_id,
        )

    def update_stats(
        self,
        intersection: int,
        union: int,
        pred_area: int,
        *,
        no_target: bool,
        category: str | None = None,
        size_bucket: str = "small",
        sample_id: str | None = None,
        boundary: Sequence[int] | None = None,
    ) -> None:
        """Add one sample from precomputed statistics (e.g. gathered from other processes).

        ``boundary``: the boundary counts of a targeted sample (``ReferringMetrics.update_stats``).

        A no-target sample's ground truth is empty, so its ``intersection`` must be 0 and its
        ``union`` equals ``pred_area``.
        """
        intersection, union, pred_area = int(intersection), int(union), int(pred_area)
        if not 0 <= intersection <= min(union, pred_area) or pred_area > union:
            raise ValueError(
                "GeneralizedMetrics.update_stats: need 0 <= intersection <= pred_area <= union, "
                f"got intersection={intersection}, pred_area={pred_area}, union={union}"
            )
        if no_target and intersection != 0:
            raise ValueError(
                f"GeneralizedMetrics.update_stats: sample {sample_id} is no-target but has "
                f"intersection {intersection} (its ground truth must be empty)"
            )
        if not no_target:
            self.targeted.update_stats(
                intersection, union, category, size_bucket, sample_id, boundary=boundary
            )
        self._samples.append(
            GeneralizedSample(intersection, union, pred_area, bool(no_target), sample_id)
        )

    def sample_ious(self) -> list[tuple[str | None, float]]:
        """``(sample_id, generalized IoU)`` of every sample, in the order they were added."""
        return [(s.sample_id, s.iou) for s in self._samples]

    def compute(self) -> dict[str, Any]:
        """Return the metrics as percentages (unrounded floats).

        Keys: ``samples``, ``samples_targeted``, ``samples_no_target``, ``gIoU``, ``cIoU``,
        ``N_acc``, ``T_acc``, and (when a targeted sample exists) the targeted ``oIoU``,
        ``mIoU``, ``Pr@0.5`` ... ``Pr@0.9``, ``per_category``, ``per_size``.

        Raises:
            ValueError: when no sample has been added.
        """
        if not self._samples:
            raise ValueError("GeneralizedMetrics.compute: no samples were added")
        ious = [s.iou for s in self._samples]
        total_i = sum(s.intersection for s in self._samples)
        total_u = sum(s.union for s in self._samples)
        no_target = [s for s in self._samples if s.no_target]
        targeted = [s for s in self._samples if not s.no_target]
        result: dict[str, Any] = {}
        if targeted:
            result.update(self.targeted.compute())
        result.update(
            {
                "samples": len(self._samples),
                "samples_targeted": len(targeted),
                "samples_no_target": len(no_target),
                "gIoU": 100.0 * float(np.mean(ious)),
                # U = 0 only when every sample is no-target and answered empty: all right
                "cIoU": 100.0 * total_i / total_u if total_u > 0 else 100.0,
                "N_acc": _share([s.pred_area == 0 for s in no_target]),
                "T_acc": _share([s.pred_area > 0 for s in targeted]),
            }
        )
        if not no_target:  # the question "is it there?" is never posed: neither accuracy
            result["N_acc"] = result["T_acc"] = None
            result["N_acc_note"] = result["T_acc_note"] = NOT_APPLICABLE.format(kind="no-target")
        elif not targeted:
            result["T_acc_note"] = NOT_APPLICABLE.format(kind="targeted")
        return result

    def report(self, *, generalized: bool = False) -> dict[str, Any]:
        """:meth:`compute` when the set holds a no-target sample or ``generalized`` is set;
        otherwise the targeted LAVT metrics alone, exactly the classic evaluation's dict."""
        if generalized or self.no_target_samples > 0:
            return self.compute()
        return self.targeted.compute()


def _share(flags: list[bool]) -> float | None:
    """Percentage of True in ``flags``; None for an empty list."""
    return 100.0 * sum(flags) / len(flags) if flags else None
