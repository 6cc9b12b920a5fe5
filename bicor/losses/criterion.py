"""The full BiCoR-Seg objective, every term returned separately (method.md section 2).

``total = ce + dice_weight * dice + aux_weight * aux_ce + hier_weight * hier
+ fisher_weight * fisher + final_fisher_weight * fisher_final``: the authors' training step
(``fisher`` sums every HBIS layer's Fisher ratio, ``fisher_final`` is the last layer's, which
their LoveDA recipe adds with weight 1 as ``loss_con``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from bicor.losses.fisher_loss import fisher_discriminative_loss, fisher_layer_ratio
from bicor.losses.seg_losses import SegmentationLoss, cross_entropy_loss, hierarchical_loss


class BiCoRCriterion(nn.Module):
    """Combines the main, auxiliary, hierarchical and Fisher terms.

    Args:
        main_loss: CE (+ label smoothing) + Dice on the full-resolution logits.
        aux_weight: weight of the label-smoothed CE of the auxiliary head (initial embeddings).
        hier_weight: weight of the summed main loss of every HBIS layer's heatmap.
        fisher_weight: weight of the cross-layer Fisher discriminative loss.
        final_fisher_weight: weight of the last layer's Fisher ratio (LoveDA: 1, else 0).
    """

    def __init__(
        self,
        *,
        main_loss: SegmentationLoss,
        aux_weight: float = 0.4,
        hier_weight: float = 0.1,
        fisher_weight: float = 0.1,
        final_fisher_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.main_loss = main_loss
        self.aux_weight = aux_weight
        self.hier_weight = hier_weight
        self.fisher_weight = fisher_weight
        self.final_fisher_weight = final_fisher_weight

    def forward(
        self,
        *,
        logits: Tensor,
        target: Tensor,
        aux_logits: Tensor | None = None,
        heatmaps: Sequence[Tensor] = (),
        layer_embeddings: Sequence[Tensor] = (),
    ) -> dict[str, Tensor]:
        """Score one batch.

        Args:
            logits: (B, K, H, W) final logits at the target's resolution.
            target: (B, H, W) int64 class ids, ``ignore_index`` for unlabelled pixels.
            aux_logits: (B, K, H, W) auxiliary-head logits, or None (term is 0).
            heatmaps: per HBIS layer (B, K, h, w) heatmap logits.
            layer_embeddings: per HBIS layer (B, K, D) class embeddings.

        Returns:
            ``{"ce", "dice", "aux_ce", "hier", "fisher", "fisher_final", "total"}`` scalar
            tensors (unweighted
            terms; ``total`` is the weighted sum).
        """
        terms = self.main_loss(logits, target)
        zero = terms["ce"].new_zeros(())
        if aux_logits is not None and self.aux_weight > 0:
            aux_ce = cross_entropy_loss(
                aux_logits,
                target,
                ignore_index=self.main_loss.ignore_index,
                label_smoothing=self.main_loss.label_smoothing,
            )
        else:
            aux_ce = zero
        hier = (
            hierarchical_loss(heatmaps, target, self.main_loss)
            if heatmaps and self.hier_weight > 0
            else zero
        )
        fisher = (
            fisher_discriminative_loss(layer_embeddings)
            if layer_embeddings and self.fisher_weight > 0
            else zero
        )
        fisher_final = (
            fisher_layer_ratio(layer_embeddings[-1])
            if layer_embeddings and self.final_fisher_weight > 0
            else zero
        )
        total = (
            terms["ce"]
            + self.main_loss.dice_weight * terms["dice"]
            + self.aux_weight * aux_ce
            + self.hier_weight * hier
            + self.fisher_weight * fisher
            + self.final_fisher_weight * fisher_final
        )
        return {
            "ce": terms["ce"],
            "dice": terms["dice"],
            "aux_ce": aux_ce,
            "hier": hier,
            "fisher": fisher,
            "fisher_final": fisher_final,
            "total": total,
        }
