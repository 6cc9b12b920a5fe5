"""Per-pixel segmentation losses of the closed-set path (the authors' GeoSeg ``UnetFormerLoss``
terms) and the hierarchical supervision of low-resolution heatmaps.

Layouts: ``logits`` (B, K, H, W) raw class scores; ``target`` (B, H, W) int64 class ids with
``ignore_index`` marking unlabelled pixels. Both losses average as the authors' code does:
the cross-entropy over *all* pixels (an ignored pixel adds 0 but counts in the mean), the Dice
over *all* classes (a class absent from the target adds 0 but counts in the mean).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DICE_EPS = 1e-7


def _at_least_fp32(x: Tensor) -> Tensor:
    """Half-precision logits are scored in float32; float64 stays float64."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


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


def _valid_ids(target: Tensor, num_classes: int, ignore_index: int) -> tuple[Tensor, Tensor]:
    """(valid mask (B, H, W), target with ignored pixels set to 0); refuses foreign ids."""
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    if safe.numel() and (int(safe.max()) >= num_classes or int(safe.min()) < 0):
        raise ValueError(
            f"target holds ids outside [0, {num_classes}) other than ignore_index={ignore_index}"
        )
    return valid, safe


def cross_entropy_loss(
    logits: Tensor, target: Tensor, *, ignore_index: int = 255, label_smoothing: float = 0.0
) -> Tensor:
    """Label-smoothed CE averaged over every pixel, ignored ones adding 0.

    Per pixel ``(1 - eps) * (-log p_y) + eps / K * sum_k (-log p_k)``; the sum over labelled
    pixels is divided by B*H*W (the authors' ``SoftCrossEntropyLoss``).
    """
    _check(logits, target)
    valid, safe = _valid_ids(target, logits.shape[1], ignore_index)
    log_probs = _at_least_fp32(logits).log_softmax(dim=1)  # (B, K, H, W)
    nll = -log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)  # (B, H, W)
    smooth = -log_probs.sum(dim=1)  # (B, H, W)
    nll = (nll * valid).mean()
    smooth = (smooth * valid).mean()
    return (1.0 - label_smoothing) * nll + label_smoothing / logits.shape[1] * smooth


def dice_loss(
    logits: Tensor, target: Tensor, *, ignore_index: int = 255, smooth: float = 0.05
) -> Tensor:
    """Soft multi-class Dice loss over the labelled pixels of the whole batch.

    Per class k: ``dice_k = (2 * sum(p_k t_k) + smooth) / max(sum(p_k) + sum(t_k) + smooth,
    1e-7)`` with ``p`` the softmax and ``t`` the one-hot target over labelled pixels; the loss is
    ``mean_k((1 - dice_k) * [class k present])`` over all K classes (the authors' ``DiceLoss``).
    """
    _check(logits, target)
    num_classes = logits.shape[1]
    valid, safe = _valid_ids(target, num_classes, ignore_index)
    mask = valid.unsqueeze(1)  # (B, 1, H, W)
    probs = _at_least_fp32(logits).softmax(dim=1) * mask  # (B, K, H, W)
    one_hot = (
        F.one_hot(safe, num_classes).permute(0, 3, 1, 2).to(probs.dtype) * mask
    )  # (B, K, H, W)
    intersection = (probs * one_hot).sum(dim=(0, 2, 3))  # (K,)
    cardinality = (probs + one_hot).sum(dim=(0, 2, 3))  # (K,)
    dice = (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(DICE_EPS)
    present = one_hot.sum(dim=(0, 2, 3)) > 0
    return ((1.0 - dice) * present).mean()


class SegmentationLoss(nn.Module):
    """Main loss: label-smoothed CE + ``dice_weight`` x Dice, both ignoring ``ignore_index``.

    ``forward(logits (B, K, H, W), target (B, H, W)) -> {"ce": scalar, "dice": scalar}``;
    :meth:`combined` gives ``ce + dice_weight * dice``.
    """

    def __init__(
        self,
        *,
        ignore_index: int = 255,
        label_smoothing: float = 0.05,
        dice_weight: float = 1.0,
        dice_smooth: float = 0.05,
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.dice_weight = dice_weight
        self.dice_smooth = dice_smooth

    def forward(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        ce = cross_entropy_loss(
            logits, target, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing
        )
        if self.dice_weight > 0:
            dice = dice_loss(
                logits, target, ignore_index=self.ignore_index, smooth=self.dice_smooth
            )
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
