"""BTDNet's loss terms and their weighted total against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from btdnet.models.config import ALIGNMENT_KINDS
from btdnet.models.losses import (
    ALIGNMENT_LOSSES,
    BTDNetCriterion,
    alignment_loss,
    dice_loss,
    spatial_alignment_loss,
    weighted_bce,
)

LN2, LN3 = math.log(2.0), math.log(3.0)


def test_weighted_bce_hand_value():
    # p = sigmoid(logit) = 0.5 (target pixel, loss ln 2, weight 1.1) and 0.75 (background
    # pixel, loss -ln 0.25 = 2 ln 2, weight 0.9): (1.1 ln2 + 0.9 * 2 ln2) / (1.1 + 0.9)
    logits = torch.tensor([[[[0.0, LN3]]]])
    targets = torch.tensor([[[[1.0, 0.0]]]])
    value = weighted_bce(logits, targets, (0.9, 1.1))
    assert value.item() == pytest.approx(1.45 * LN2, rel=1e-6)
    # swapping the class weights changes the value: (0.9 ln2 + 1.1 * 2 ln2) / 2
    assert weighted_bce(logits, targets, (1.1, 0.9)).item() == pytest.approx(1.55 * LN2, rel=1e-6)


def test_dice_loss_hand_value_per_sample_then_mean():
    # sample 1: p = .5 .75 / .25 .5, truth 1 1 / 0 0: overlap 1.25, sums 2 + 2,
    #   1 - (2 * 1.25 + 1) / (2 + 2 + 1) = 0.3
    # sample 2: p = .5 everywhere, empty truth: 1 - (0 + 1) / (2 + 0 + 1) = 2/3
    logits = torch.tensor([[[[0.0, LN3], [-LN3, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    targets = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    assert dice_loss(logits, targets).item() == pytest.approx((0.3 + 2 / 3) / 2, rel=1e-6)


def test_alignment_loss_hand_value():
    # mask 1 0 / 0 0: area-down-sampled to 1x1 it is 0.25.
    # map 1 (1x1, logit ln 3, p = .75): -(0.25 ln .75 + 0.75 ln .25);
    # map 2 (2x2, logits 0, p = .5): ln 2 at every pixel. Mean of the two.
    targets = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    maps = [torch.full((1, 1, 1, 1), LN3), torch.zeros(1, 1, 2, 2)]
    first = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))
    assert alignment_loss(maps, targets).item() == pytest.approx((first + LN2) / 2, rel=1e-6)


def _criterion(alignment_weight: float = 0.6) -> BTDNetCriterion:
    return BTDNetCriterion(
        class_weights=(0.9, 1.1),
        dice_weight=0.2,
        target_stream_weight=0.3,
        background_weight=0.4,
        agreement_weight=0.5,
        alignment_weight=alignment_weight,
        extra_weights={"dmols_visual": 0.7},
    )


def test_criterion_terms_and_weighted_total_by_hand():
    # one sample of 1x2 pixels, mask 1 0
    losses = _criterion()(
        joint_logits=torch.tensor([[[[0.0, LN3]]]]),  # p .5 .75
        targets=torch.tensor([[[1, 0]]]),
        target_stream=torch.tensor([[[[LN3, 0.0]]]]),  # p .75 .5
        background_stream=torch.zeros(1, 1, 1, 2),  # p .5 .5
        correlation_maps=[torch.zeros(1, 1, 1, 1)],  # against the mask's mean 0.5
        extra={"dmols_visual": torch.tensor(2.0)},
    )
    hand = {
        "joint_ce": 1.45 * LN2,
        "dice": 1 - (2 * 0.5 + 1) / (1.25 + 1 + 1),
        "target_stream": (-math.log(0.75) + LN2) / 2,
        "background_stream": LN2,  # p .5 against the complement 0 1
        "agreement": ((0.75 + 0.5 - 1) ** 2 + 0.0) / 2,
        "alignment": LN2,
        "dmols_visual": 2.0,
    }
    weights = {
        "joint_ce": 1.0,
        "dice": 0.2,
        "target_stream": 0.3,
        "background_stream": 0.4,
        "agreement": 0.5,
        "alignment": 0.6,
        "dmols_visual": 0.7,
    }
    assert set(losses) == {*hand, "total"}
    for name, value in hand.items():
        assert losses[name].item() == pytest.approx(value, rel=1e-6), name
    total = sum(weights[n] * v for n, v in hand.items())
    assert losses["total"].item() == pytest.approx(total, rel=1e-6)


def test_criterion_without_streams_alignment_or_unknown_terms():
    losses = _criterion(alignment_weight=0.0)(
        joint_logits=torch.zeros(1, 1, 2, 2),
        targets=torch.ones(1, 2, 2),
        correlation_maps=[torch.zeros(1, 1, 1, 1)],
    )
    assert set(losses) == {"joint_ce", "dice", "total"}
    # all pixels target, p .5: ce = ln 2; dice = 1 - (2 * 2 + 1) / (2 + 4 + 1)
    assert losses["total"].item() == pytest.approx(LN2 + 0.2 * (1 - 5 / 7), rel=1e-6)
    with pytest.raises(KeyError, match="dmols_language"):
        _criterion()(
            joint_logits=torch.zeros(1, 1, 2, 2),
            targets=torch.ones(1, 2, 2),
            extra={"dmols_language": torch.tensor(1.0)},
        )


def test_presence_term_is_off_unless_weighted():
    torch.manual_seed(0)
    criterion = BTDNetCriterion(
        class_weights=(1.0, 1.0), dice_weight=1.0, target_stream_weight=0.0,
        background_weight=0.0, agreement_weight=0.0, alignment_weight=0.0, extra_weights={},
    )  # fmt: skip
    joint, targets = torch.randn(2, 1, 4, 4), (torch.rand(2, 4, 4) > 0.5).long()
    losses = criterion(joint_logits=joint, targets=targets, presence_logits=torch.randn(2))
    assert float(losses["presence"]) > 0  # computed and reported ...
    expected = float(losses["joint_ce"]) + float(losses["dice"])
    assert float(losses["total"]) == pytest.approx(expected)  # ... but weighted 0 by default


def test_spatial_alignment_loss_hand_value():
    # sample 1: mask on the right pixel of a 1x2 map, logits (0, ln 3): softmax (.25, .75),
    # KL(p || q) = 1 * ln(1 / .75). Sample 2 has an empty mask: left out of the mean.
    targets = torch.tensor([[[[0.0, 1.0]]], [[[0.0, 0.0]]]])
    maps = [torch.tensor([[[[0.0, LN3]]], [[[9.0, -9.0]]]])]
    assert spatial_alignment_loss(maps, targets).item() == pytest.approx(-math.log(0.75))
    # the level of the map does not matter, only where it points
    shifted = [maps[0] + 7.0]
    assert spatial_alignment_loss(shifted, targets).item() == pytest.approx(-math.log(0.75))
    # a half-covered 2x2 mask area-down-sampled to 1x2: (0.5, 0) -> p = (1, 0) as well
    wide = torch.zeros(1, 1, 2, 4)
    wide[..., 0, 2:] = 1
    assert spatial_alignment_loss([maps[0][:1]], wide).item() == pytest.approx(-math.log(0.75))
    # every mask empty: zero, still part of the graph
    logits = torch.zeros(2, 1, 1, 2, requires_grad=True)
    empty = spatial_alignment_loss([logits], torch.zeros(2, 1, 1, 2))
    empty.backward()
    assert empty.item() == 0.0 and logits.grad is not None


def test_criterion_uses_the_chosen_alignment_kind():
    targets = torch.tensor([[[0.0, 1.0]]])  # (B, H, W)
    maps = [torch.tensor([[[[0.0, LN3]]]])]
    common = dict(
        class_weights=(1.0, 1.0), dice_weight=0.0, target_stream_weight=0.0,
        background_weight=0.0, agreement_weight=0.0, alignment_weight=1.0, extra_weights={},
    )  # fmt: skip
    logits = torch.zeros(1, 1, 1, 2)
    spatial = BTDNetCriterion(**common, alignment_kind="spatial")
    bce = BTDNetCriterion(**common)
    got = spatial(joint_logits=logits, targets=targets, correlation_maps=maps)["alignment"]
    assert got.item() == pytest.approx(-math.log(0.75))
    got = bce(joint_logits=logits, targets=targets, correlation_maps=maps)["alignment"]
    assert got.item() == pytest.approx(alignment_loss(maps, targets[:, None]).item())
    with pytest.raises(ValueError, match="alignment_kind"):
        BTDNetCriterion(**common, alignment_kind="l2")


def test_every_configurable_alignment_kind_has_a_loss():
    # config.validate accepts ALIGNMENT_KINDS; the criterion must build each one, and no other
    assert set(ALIGNMENT_LOSSES) == set(ALIGNMENT_KINDS)
