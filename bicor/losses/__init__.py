"""Losses of the BiCoR-Seg closed-set path."""

from bicor.losses.criterion import BiCoRCriterion
from bicor.losses.fisher_loss import fisher_discriminative_loss, fisher_layer_ratio
from bicor.losses.seg_losses import (
    SegmentationLoss,
    cross_entropy_loss,
    dice_loss,
    hierarchical_loss,
)

__all__ = [
    "BiCoRCriterion",
    "SegmentationLoss",
    "cross_entropy_loss",
    "dice_loss",
    "fisher_discriminative_loss",
    "fisher_layer_ratio",
    "hierarchical_loss",
]
