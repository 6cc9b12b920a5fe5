"""BTDNet's training losses: every term named and returned, plus the weighted total.

Terms (all computed in float32; logits (B, 1, H, W), targets (B, H, W) 0/1):

- ``joint_ce``: the peers' 2-class cross-entropy with class weights (0.9 background, 1.1 target),
  written on the joint logit ``target - background`` (2-class softmax == sigmoid of the
  difference), normalised by the summed weights exactly as ``F.cross_entropy(weight=...)``;
- ``dice``: soft Dice of the joint prediction (RMSIN adds it with weight 0.1);
- ``target_stream`` / ``background_stream`` (twin stream only): each stream's own BCE, against the
  mask and its complement;
- ``agreement`` (twin stream only): the two streams should be complementary,
  ``mean((sigmoid(t) + sigmoid(b) - 1)^2)``;
- ``alignment`` (when correlation maps exist): BCE of every stage's sentence-to-pixel map against
  the area-down-sampled mask, averaged over stages (``alignment_kind="bce"``), or the KL
  divergence of the map's softmax over pixels from the mask's normalised area
  (``"spatial"``: samples with an empty mask are skipped);
- ``presence`` (generalized referring, when presence logits are given): BCE of the presence
  logit (B,) against whether the sample has a target (a no-target sample's mask is empty, so
  the mask terms above teach it to paint nothing);
- any extra named term passed in (``dmols_visual``, ``dmols_language``), weighted by the map given
  at construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def weighted_bce(
    logits: torch.Tensor, targets: torch.Tensor, class_weights: tuple[float, float]
) -> torch.Tensor:
    """2-class weighted CE as a logit BCE; ``class_weights`` = (background, target)."""
    weights = torch.where(targets > 0.5, class_weights[1], class_weights[0])
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (loss * weights).sum() / weights.sum()


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss per sample, averaged over the batch."""
    probs = torch.sigmoid(logits).flatten(1)  # (B, HW)
    truth = targets.flatten(1)  # (B, HW)
    overlap = (probs * truth).sum(1)
    return (1 - (2 * overlap + smooth) / (probs.sum(1) + truth.sum(1) + smooth)).mean()


def alignment_loss(maps: Sequence[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Mean BCE of correlation logits (B, 1, h_i, w_i) against the area-down-sampled mask."""
    terms = []
    for corr in maps:
        soft = F.interpolate(targets, size=corr.shape[-2:], mode="area")  # (B, 1, h, w)
        terms.append(F.binary_cross_entropy_with_logits(corr.float(), soft))
    return torch.stack(terms).mean()


def spatial_alignment_loss(maps: Sequence[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Mean KL(mask distribution || softmax of the map over pixels), per stage and sample.

    The target distribution is the area-down-sampled mask (B, 1, h, w) divided by its sum;
    samples whose mask is empty have no distribution and are left out (0 when all are).
    """
    terms = []
    for corr in maps:
        soft = F.interpolate(targets, size=corr.shape[-2:], mode="area").flatten(1)  # (B, hw)
        mass = soft.sum(1)  # (B,)
        keep = mass > 0
        if not bool(keep.any()):
            terms.append(corr.float().sum() * 0.0)
            continue
        truth = soft[keep] / mass[keep, None]  # (B', hw)
        log_q = corr.float().flatten(1)[keep].log_softmax(dim=1)  # (B', hw)
        terms.append(F.kl_div(log_q, truth, reduction="batchmean"))
    return torch.stack(terms).mean()


# alignment_kind -> its loss; the keys are config.ALIGNMENT_KINDS
# (tests/btdnet/models/test_model_losses.py)
ALIGNMENT_LOSSES = {"bce": alignment_loss, "spatial": spatial_alignment_loss}


class BTDNetCriterion(nn.Module):
    """Computes the named loss terms and their weighted ``total`` (no parameters).

    Args:
        class_weights: (background, target) weights of ``joint_ce``.
        dice_weight: weight of ``dice``.
        target_stream_weight: weight of ``target_stream``.
        background_weight: weight of ``background_stream``.
        agreement_weight: weight of ``agreement``.
        alignment_weight: weight of ``alignment`` (0 disables it).
        alignment_kind: ``"bce"`` (:func:`alignment_loss`) or ``"spatial"``
            (:func:`spatial_alignment_loss`).
        presence_weight: weight of ``presence``.
        extra_weights: weights of extra terms by name (e.g. ``dmols_visual``).
    """

    def __init__(
        self,
        *,
        class_weights: tuple[float, float],
        dice_weight: float,
        target_stream_weight: float,
        background_weight: float,
        agreement_weight: float,
        alignment_weight: float,
        extra_weights: Mapping[str, float],
        presence_weight: float = 0.0,
        alignment_kind: str = "bce",
    ) -> None:
        super().__init__()
        if alignment_kind not in ALIGNMENT_LOSSES:
            raise ValueError(
                f"alignment_kind must be one of {sorted(ALIGNMENT_LOSSES)}: {alignment_kind!r}"
            )
        self.alignment = ALIGNMENT_LOSSES[alignment_kind]
        self.class_weights = (float(class_weights[0]), float(class_weights[1]))
        self.weights = {
            "joint_ce": 1.0,
            "dice": dice_weight,
            "target_stream": target_stream_weight,
            "background_stream": background_weight,
            "agreement": agreement_weight,
            "alignment": alignment_weight,
            "presence": presence_weight,
            **extra_weights,
        }

    def forward(
        self,
        *,
        joint_logits: torch.Tensor,
        targets: torch.Tensor,
        target_stream: torch.Tensor | None = None,
        background_stream: torch.Tensor | None = None,
        correlation_maps: Sequence[torch.Tensor] = (),
        extra: Mapping[str, torch.Tensor] | None = None,
        presence_logits: torch.Tensor | None = None,
        present: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Return ``{term: value, ..., "total": weighted sum}``.

        Args:
            joint_logits: (B, 1, H, W) target-vs-background logits.
            targets: (B, H, W) 0/1 mask.
            target_stream: (B, 1, H, W) target-stream logits (twin stream).
            background_stream: (B, 1, H, W) background-stream logits (twin stream).
            correlation_maps: per-stage (B, 1, h_i, w_i) logits.
            extra: further named terms, weighted by ``extra_weights``.
            presence_logits: (B,) presence logits (generalized referring).
            present: (B,) 1 where the sample has a target; defaults to "the mask is non-empty".
        """
        truth = targets[:, None].float()  # (B, 1, H, W)
        joint = joint_logits.float()
        losses = {
            "joint_ce": weighted_bce(joint, truth, self.class_weights),
            "dice": dice_loss(joint, truth),
        }
        if target_stream is not None and background_stream is not None:
            t, b = target_stream.float(), background_stream.float()
            losses["target_stream"] = F.binary_cross_entropy_with_logits(t, truth)
            losses["background_stream"] = F.binary_cross_entropy_with_logits(b, 1 - truth)
            losses["agreement"] = (torch.sigmoid(t) + torch.sigmoid(b) - 1).pow(2).mean()
        if correlation_maps and self.weights["alignment"] > 0:
            losses["alignment"] = self.alignment(correlation_maps, truth)
        if presence_logits is not None:
            if present is None:
                present = targets.flatten(1).amax(dim=1) > 0  # (B,)
            losses["presence"] = F.binary_cross_entropy_with_logits(
                presence_logits.float(), present.float()
            )
        for name, value in (extra or {}).items():
            if name not in self.weights:
                raise KeyError(f"loss term {name!r} has no weight; known: {sorted(self.weights)}")
            losses[name] = value.float()
        losses["total"] = sum(self.weights[name] * value for name, value in losses.items())
        return losses
