"""Thirds of a split by the share of the image its target covers, and each third's mean IoU."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from btdnet.data.records import RleMask
from btdnet.evaluation.relative_size import (
    SIZE_THIRDS,
    area_share,
    per_relative_size,
    size_third,
    third_cuts,
)


def _record(sample_id: str, pixels: int, side: int = 10) -> SimpleNamespace:
    """A record whose (side x side) mask has ``pixels`` foreground pixels."""
    mask = np.zeros(side * side, dtype=bool)
    mask[:pixels] = True
    grid = mask.reshape(side, side)
    return SimpleNamespace(sample_id=sample_id, mask=SimpleNamespace(decode=lambda: grid))


def test_the_share_of_a_real_rle_mask_is_its_area_over_its_size() -> None:
    truth = np.zeros((6, 10), dtype=bool)
    truth[1:4, 2:7] = True  # 15 of 60 pixels
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(truth.astype(np.uint8)))
    mask = RleMask(height=6, width=10, counts=rle["counts"], file="f", label="annotation 1")
    assert area_share(SimpleNamespace(mask=mask)) == pytest.approx(0.25)


def test_cuts_are_the_split_quantiles_and_a_share_at_a_cut_goes_to_the_lower_third() -> None:
    # 1/3 quantile of (0.1, 0.2, 0.3, 0.4, 0.5, 0.6): position 5/3 -> 0.2 + (2/3) * 0.1
    low, high = third_cuts([0.6, 0.1, 0.5, 0.2, 0.4, 0.3])
    assert (low, high) == (pytest.approx(0.8 / 3), pytest.approx(1.3 / 3))
    # three shares equal to the first cut: all in the small third, none in the middle one
    cuts = third_cuts([0.1, 0.2, 0.2, 0.2, 0.5, 0.6])
    assert cuts == (pytest.approx(0.2), pytest.approx(0.3))
    assert [size_third(s, cuts) for s in (0.1, 0.2, 0.25, 0.29, 0.31)] == [
        SIZE_THIRDS[0],
        SIZE_THIRDS[0],
        SIZE_THIRDS[1],
        SIZE_THIRDS[1],
        SIZE_THIRDS[2],
    ]
    with pytest.raises(ValueError, match="no targeted sample"):
        third_cuts([])


def test_mean_iou_per_third_by_hand() -> None:
    records = [
        _record("a", 10),
        _record("b", 20),
        _record("c", 30),
        _record("d", 40),
        _record("e", 50),
        _record("f", 60),
        *(_record(f"none{k}", 0) for k in range(3)),  # no target: in no third, nor the cuts
    ]
    # the cuts are 0.2667 / 0.4333; with the three 0 shares counted they would be 0.0667 /
    # 0.3333 and put a and b in the middle third, d in the large one
    ious = {"a": 1.0, "b": 0.5, "c": 0.25, "d": 0.75, "f": 0.0, "none0": 1.0}  # e: unscored
    assert per_relative_size(records, ious) == {
        "small third": {"samples": 2, "mIoU": pytest.approx(75.0), "share_range": [10.0, 20.0]},
        "middle third": {"samples": 2, "mIoU": pytest.approx(50.0), "share_range": [30.0, 40.0]},
        "large third": {"samples": 1, "mIoU": 0.0, "share_range": [50.0, 60.0]},
    }
