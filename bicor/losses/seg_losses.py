"""Per-pixel segmentation losses of the closed-set path: CE + Dice (with an ignore index) and
the hierarchical supervision of low-resolution heatmaps.

Layouts: ``logits`` (B, K, H, W) raw class scores; ``target`` (B, H, W) int64 class ids with
``ignore_index`` marking unlabelled pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check(logits: Tensor, target: Tensor) -> None:
    if logits.dim() != 4 or target.dim() != 3:
        raise ValueError(
            f"expected logits (B, K, H, W) and target (B, H, W), got {tuple(logits.shape)} "
            f"and {tuple(target.shape)}"
        )
    if logits.shape[0] != target.shape[0] or logits.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match"
        )


def cross_entropy_loss(
    logits: Tensor, target: Tensor, *, ignore_index: int = 255, label_smoothing: float = 0.0
) -> Tensor:
    """Mean CE over the labelled pixels; 0 (with a gradient path) when every pixel is ignored."""
    _check(logits, target)
    if not bool((target != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(
        logits.float(), target, ignore_index=ignore_index, label_smoothing=label_smoothing
    )


def dice_loss(
    logits: Tensor, target: Tensor, *, ignore_index: int = 255, smooth: float = 1.0
) -> Tensor:
    """Soft multi-class Dice loss over the labelled pixels of the whole batch.

    Per class k: ``dice_k = (2 * sum(p_k * t_k) + smooth) / (sum(p_k) + sum(t_k) + smooth)``,
    with ``p`` the softmax and ``t`` the one-hot target, both summed over labelled pixels of the
    batch. The loss is ``1 - mean(dice_k)`` over the classes present in the target (absent
    classes are left to the CE term). 0 when every pixel is ignored.
    """
    _check(logits, target)
    num_classes = logits.shape[1]
    valid = target != ignore_index  # (B, H, W)
    if not bool(valid.any()):
        return logits.sum() * 0.0
    probs = logits.float().softmax(dim=1) * valid.unsqueeze(1)  # (B, K, H, W)
    safe_target = torch.where(valid, target, torch.zeros_like(target))
    if int(safe_target.max()) >= num_classes or int(safe_target.min()) < 0:
        raise ValueError(
            f"target holds ids outside [0, {num_classes}) other than ignore_index={ignore_index}"
        )
    one_hot = F.one_hot(safe_target, num_classes).permute(0, 3, 1, 2)  # (B, K, H, W)
    one_hot = one_hot.float() * valid.unsqueeze(1)
    intersection = (probs * one_hot).sum(dim=(0, 2, 3))  # (K,)
    cardinality = probs.sum(dim=(0, 2, 3)) + one_hot.sum(dim=(0, 2, 3))  # (K,)
    dice = (2.0 * intersection + smooth) / (cardinality + smooth)
    present = one_hot.sum(dim=(0, 2, 3)) > 0
    return 1.0 - dice[present].mean()


class SegmentationLoss(nn.Module):
    """Main loss: CE with label smoothing + ``dice_weight`` x Dice, both ignoring ``ignore_index``.

    ``forward(logits (B, K, H, W), target (B, H, W)) -> {"ce": scalar, "dice": scalar}``;
    :meth:`combined` gives ``ce + dice_weight * dice``.
    """

    def __init__(
        self, *, ignore_index: int = 255, label_smoothing: float = 0.05, dice_weight: float = 1.0
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.dice_weight = dice_weight

    def forward(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        ce = cross_entropy_loss(
            logits, target, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing
        )
        if self.dice_weight > 0:
            dice = dice_loss(logits, target, ignore_index=self.ignore_index)
        else:
            dice = ce.new_zeros(())
        return {"ce": ce, "dice": dice}

    def combined(self, logits: Tensor, target: Tensor) -> Tensor:
        terms = self(logits, target)
        return terms["ce"] + self.dice_weight * terms["dice"]


def hierarchical_loss(
    heatmaps: Sequence[Tensor], target: Tensor, main_loss: SegmentationLoss
) -> Tensor:
    """Sum over layers of the main loss of each heatmap, bilinearly up-sampled to the target.

    Args:
        heatmaps: one (B, K, h, w) tensor of heatmap logits per HBIS layer.
        target: (B, H, W) int64 class ids.
        main_loss: the :class:`SegmentationLoss` that scores the final logits.
    """
    total = target.new_zeros((), dtype=torch.float32)
    for heatmap in heatmaps:
        upsampled = F.interpolate(
            heatmap, size=target.shape[-2:], mode="bilinear", align_corners=False
        )
        total = total + main_loss.combined(upsampled, target)
    return total
