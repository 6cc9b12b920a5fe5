"""BiCoR-Seg losses: the Fisher loss by hand, CE + Dice with an ignore index, the criterion."""

import math

import pytest
import torch

from bicor.losses import (
    BiCoRCriterion,
    SegmentationLoss,
    cross_entropy_loss,
    dice_loss,
    fisher_discriminative_loss,
    fisher_layer_ratio,
    hierarchical_loss,
)


def test_fisher_loss_hand_computed_2x2x2():
    # class 0: (0,0), (0,2) -> centre (0,1); class 1: (2,0), (2,2) -> centre (2,1)
    # S_w = mean of four squared distances of 1 = 1; S_b = |(0,1)-(2,1)|^2 = 4
    emb = torch.tensor([[[0.0, 0.0], [2.0, 0.0]], [[0.0, 2.0], [2.0, 2.0]]])  # (B=2, N=2, C=2)
    loss = fisher_discriminative_loss([emb])
    assert loss.item() == pytest.approx(1.0 / (4.0 + 1e-6), rel=1e-6)


def test_fisher_loss_weighted_sum_over_layers():
    first = torch.tensor([[[0.0, 0.0], [2.0, 0.0]], [[0.0, 2.0], [2.0, 2.0]]])  # ratio 1/4
    # class 0: (1,0), (3,0) -> (2,0); class 1: (0,3), (0,1) -> (0,2); S_w = 1, S_b = 8
    second = torch.tensor([[[1.0, 0.0], [0.0, 3.0]], [[3.0, 0.0], [0.0, 1.0]]])
    loss = fisher_discriminative_loss([first, second], weights=[1.0, 0.5])
    expected = 1.0 / (4.0 + 1e-6) + 0.5 * (1.0 / (8.0 + 1e-6))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert fisher_discriminative_loss([first, second]).item() == pytest.approx(0.25 + 0.125, 1e-5)


def test_fisher_loss_batch_of_one_has_zero_within_scatter():
    emb = torch.randn(1, 4, 8, requires_grad=True)
    loss = fisher_discriminative_loss([emb, emb * 2])
    assert loss.item() == 0.0
    loss.backward()
    assert emb.grad is not None


def test_fisher_loss_clamps_between_class_scatter():
    # both centres at (0, 0): S_b = 0 -> clamped to 1e-4; S_w = 1
    emb = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[-1.0, 0.0], [-1.0, 0.0]]])
    assert fisher_discriminative_loss([emb]).item() == pytest.approx(1.0 / (1e-4 + 1e-6), 1e-5)


def test_fisher_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one layer"):
        fisher_discriminative_loss([])
    with pytest.raises(ValueError, match=r"\(B, N, C\)"):
        fisher_discriminative_loss([torch.zeros(2, 3)])
    with pytest.raises(ValueError, match="weights"):
        fisher_discriminative_loss([torch.zeros(2, 3, 4)], weights=[1.0, 2.0])


def test_cross_entropy_averages_over_every_pixel_and_uses_label_smoothing():
    logits = torch.zeros(1, 2, 1, 2)
    logits[0, 0, 0, 0] = math.log(3.0)  # pixel 0: p = (3/4, 1/4), label 0
    target = torch.tensor([[[0, 255]]])
    # the ignored pixel adds 0 but counts in the mean (the authors' SoftCrossEntropyLoss)
    assert cross_entropy_loss(logits, target).item() == pytest.approx(-math.log(0.75) / 2, 1e-6)
    # smoothing 0.1 over 2 classes: 0.9 * nll + 0.05 * (-log p0 - log p1)
    smoothed = -(0.9 * math.log(0.75) + 0.05 * (math.log(0.75) + math.log(0.25))) / 2
    value = cross_entropy_loss(logits, target, label_smoothing=0.1).item()
    assert value == pytest.approx(smoothed, 1e-6)


def test_losses_are_zero_when_every_pixel_is_ignored():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), 255)
    assert cross_entropy_loss(logits, target).item() == 0.0
    assert dice_loss(logits, target).item() == 0.0
    (cross_entropy_loss(logits, target) + dice_loss(logits, target)).backward()
    assert logits.grad is not None and logits.grad.abs().max().item() == 0.0


def test_dice_loss_hand_computed_with_ignore():
    # two pixels, two classes, probabilities (0.75, 0.25) and (0.5, 0.5); a third ignored pixel
    logits = torch.zeros(1, 2, 1, 3)
    logits[0, 0, 0, 0] = math.log(3.0)
    logits[0, 1, 0, 2] = 100.0  # ignored pixel: must not count
    target = torch.tensor([[[0, 1, 255]]])
    s = 0.05  # the authors' smoothing
    # class 0: I = 0.75, |p| + |t| = 1.25 + 1; class 1: I = 0.5, |p| + |t| = 0.75 + 1
    dice0 = (1.5 + s) / (2.25 + s)
    dice1 = (1.0 + s) / (1.75 + s)
    assert dice_loss(logits, target).item() == pytest.approx(1 - (dice0 + dice1) / 2, 1e-6)
    # only class 0 present: class 1 adds 0 but still counts in the mean over classes
    only0 = torch.tensor([[[0, 255, 255]]])
    # class 0: I = 0.75, |p| + |t| = 0.75 + 1
    expected = (1 - (1.5 + s) / (1.75 + s)) / 2
    assert dice_loss(logits, only0).item() == pytest.approx(expected, 1e-6)
    assert dice_loss(logits, only0, smooth=1.0).item() == pytest.approx((1 - 2.5 / 2.75) / 2, 1e-6)


def test_foreign_class_ids_are_refused():
    with pytest.raises(ValueError, match="outside"):
        cross_entropy_loss(torch.zeros(1, 2, 1, 2), torch.tensor([[[0, 5]]]))


def test_hierarchical_loss_upsamples_each_heatmap():
    main = SegmentationLoss(label_smoothing=0.0, dice_weight=1.0)
    target = torch.tensor([[0, 1, 2, 1], [2, 2, 0, 1], [1, 0, 0, 2], [0, 1, 2, 2]])[None]
    torch.manual_seed(4)
    coarse = torch.randn(1, 3, 2, 2) * 3  # a heatmap that varies: interpolation shows
    fine = torch.randn(1, 3, 4, 4)  # already at the target's size: used as is

    # Bilinear 2 -> 4 with align_corners=False, by hand: output centres sit at input
    # coordinates -0.25, 0.25, 0.75, 1.25, clamped at the border: a row [a, b] becomes
    # [a, 0.75 a + 0.25 b, 0.25 a + 0.75 b, b]; the same along columns.
    spread = torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]])  # (4, 2)
    by_hand = torch.einsum("yi,bkij,xj->bkyx", spread, coarse, spread)  # (1, 3, 4, 4)
    expected = main.combined(by_hand, target) + main.combined(fine, target)
    value = hierarchical_loss([coarse, fine], target, main)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    nearest = coarse.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert abs(main.combined(nearest, target).item() - main.combined(by_hand, target).item()) > 1e-3


def test_criterion_returns_every_term_and_weighted_total():
    main = SegmentationLoss(label_smoothing=0.05, dice_weight=0.5)
    criterion = BiCoRCriterion(
        main_loss=main, aux_weight=0.4, hier_weight=0.1, fisher_weight=0.2, final_fisher_weight=1.0
    )
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    target[0, 0] = 255
    emb = [torch.randn(2, 3, 4), torch.randn(2, 3, 4)]
    terms = criterion(
        logits=logits,
        target=target,
        aux_logits=torch.randn(2, 3, 8, 8),
        heatmaps=[torch.randn(2, 3, 2, 2)],
        layer_embeddings=emb,
    )
    assert set(terms) == {"ce", "dice", "aux_ce", "hier", "fisher", "fisher_final", "total"}
    expected = (
        terms["ce"]
        + 0.5 * terms["dice"]
        + 0.4 * terms["aux_ce"]
        + 0.1 * terms["hier"]
        + 0.2 * terms["fisher"]
        + 1.0 * terms["fisher_final"]
    )
    assert terms["total"].item() == pytest.approx(expected.item(), 1e-6)
    assert terms["fisher"].item() == pytest.approx(fisher_discriminative_loss(emb).item(), 1e-6)
    assert terms["fisher_final"].item() == pytest.approx(fisher_layer_ratio(emb[1]).item(), 1e-6)
    no_extras = criterion(logits=logits, target=target)
    assert no_extras["aux_ce"].item() == no_extras["hier"].item() == no_extras["fisher"].item() == 0


def test_fisher_loss_needs_exactly_one_weight_per_layer():
    layers = [torch.randn(2, 3, 4), torch.randn(2, 3, 4)]
    for weights in ([1.0], [1.0, 2.0, 3.0]):  # too few would drop a layer silently
        with pytest.raises(ValueError, match="2 layers"):
            fisher_discriminative_loss(layers, weights=weights)


def test_combined_is_ce_plus_weighted_dice_by_hand():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 4, 5), torch.randint(0, 3, (2, 4, 5))
    loss = SegmentationLoss(dice_weight=0.5)
    terms = loss(logits, target)
    assert float(terms["dice"]) > 0.01
    expected = float(terms["ce"]) + 0.5 * float(terms["dice"])
    assert float(loss.combined(logits, target)) == pytest.approx(expected)


def test_targets_must_be_three_dimensional_class_ids():
    loss = SegmentationLoss()
    # a channel axis, or no batch axis (sizes chosen so that every other check would pass)
    for logits, target in [((2, 3, 4, 5), (2, 1, 4, 5)), ((4, 3, 4, 5), (4, 5))]:
        with pytest.raises(ValueError, match=r"target \(B, H, W\)"):
            loss(torch.randn(logits), torch.zeros(target, dtype=torch.long))
