"""ReferringMetrics against hand-computed values on crafted masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from btdnet.metrics.referring import PR_KEYS, ReferringMetrics, intersection_union, size_bucket


def _masks(pred_pixels: int, gt_pixels: int, overlap: int, size: int = 8) -> tuple:
    """(pred, gt) flat-filled masks with the given pixel counts and overlap."""
    pred = np.zeros(size * size, dtype=bool)
    gt = np.zeros(size * size, dtype=bool)
    gt[:gt_pixels] = True
    start = gt_pixels - overlap
    pred[start : start + pred_pixels] = True
    return pred.reshape(size, size), gt.reshape(size, size)


def test_masks_helper_counts() -> None:
    pred, gt = _masks(2, 3, 1)
    assert intersection_union(pred, gt) == (1, 4)


def test_oiou_differs_from_miou_two_samples() -> None:
    # A: I=1, U=4 (IoU 0.25); B: I=6, U=6 (IoU 1.0).
    # oIoU = 7/10 = 70 %, mIoU = (0.25 + 1) / 2 = 62.5 %, Pr@X = 50 % for every X.
    metrics = ReferringMetrics()
    metrics.update(*_masks(2, 3, 1))
    metrics.update(*_masks(6, 6, 6))
    result = metrics.compute()
    assert result["samples"] == 2
    assert result["oIoU"] == pytest.approx(70.0)
    assert result["mIoU"] == pytest.approx(62.5)
    for key in PR_KEYS:
        assert result[key] == pytest.approx(50.0)


def test_empty_union_counts_as_zero_and_fails_every_threshold() -> None:
    metrics = ReferringMetrics()
    empty = np.zeros((4, 4), dtype=bool)
    metrics.update(empty, empty)
    result = metrics.compute()
    assert result["samples"] == 1
    assert result["oIoU"] == 0.0
    assert result["mIoU"] == 0.0
    assert all(result[key] == 0.0 for key in PR_KEYS)
    # With a perfect sample beside it: oIoU ignores it (0 in both sums), mIoU halves.
    metrics.update(*_masks(4, 4, 4))
    result = metrics.compute()
    assert result["oIoU"] == pytest.approx(100.0)
    assert result["mIoU"] == pytest.approx(50.0)
    assert result["Pr@0.9"] == pytest.approx(50.0)


def test_empty_prediction_and_full_overlap() -> None:
    metrics = ReferringMetrics()
    gt = np.zeros((4, 4), dtype=bool)
    gt[:2] = True  # 8 pixels
    metrics.update(np.zeros_like(gt), gt)
    result = metrics.compute()
    assert (result["oIoU"], result["mIoU"], result["Pr@0.5"]) == (0.0, 0.0, 0.0)
    metrics.reset()
    metrics.update(torch.from_numpy(gt), torch.from_numpy(gt.astype(np.int64)))
    result = metrics.compute()
    assert result["samples"] == 1
    assert result["oIoU"] == pytest.approx(100.0)
    assert result["mIoU"] == pytest.approx(100.0)
    assert all(result[key] == pytest.approx(100.0) for key in PR_KEYS)


@pytest.mark.parametrize(
    ("intersection", "union", "passed"),
    [
        (5, 10, ["Pr@0.5"]),
        (7, 10, ["Pr@0.5", "Pr@0.6", "Pr@0.7"]),
        (9, 10, PR_KEYS),
        (69, 100, ["Pr@0.5", "Pr@0.6"]),
        (49, 100, []),
        (3, 5, ["Pr@0.5", "Pr@0.6"]),
        (700_000_007, 1_000_000_010, ["Pr@0.5", "Pr@0.6", "Pr@0.7"]),
        (899_999_999, 1_000_000_000, ["Pr@0.5", "Pr@0.6", "Pr@0.7", "Pr@0.8"]),
    ],
)
def test_threshold_is_greater_or_equal_exactly(
    intersection: int, union: int, passed: list[str]
) -> None:
    metrics = ReferringMetrics()
    metrics.update_stats(intersection, union, None, "large")
    result = metrics.compute()
    for key in PR_KEYS:
        assert result[key] == (100.0 if key in passed else 0.0), key


def test_threshold_edge_through_masks() -> None:
    # I=7, U=10 from real masks counts at Pr@0.7 but not Pr@0.8.
    metrics = ReferringMetrics()
    metrics.update(*_masks(8, 9, 7))
    result = metrics.compute()
    assert result["mIoU"] == pytest.approx(70.0)
    assert result["Pr@0.7"] == 100.0
    assert result["Pr@0.8"] == 0.0


def test_size_bucket_thresholds() -> None:
    assert size_bucket(0) == "small"
    assert size_bucket(32 * 32 - 1) == "small"
    assert size_bucket(32 * 32) == "medium"
    assert size_bucket(96 * 96 - 1) == "medium"
    assert size_bucket(96 * 96) == "large"
    with pytest.raises(ValueError):
        size_bucket(-1)


def test_per_category_and_per_size_splits() -> None:
    metrics = ReferringMetrics()
    # ship: I=1,U=2 (small) and I=3,U=3 (large); car: I=0,U=5 (medium); unknown: I=2,U=4.
    metrics.update_stats(1, 2, "ship", "small", "s1")
    metrics.update_stats(3, 3, "ship", "large", "s2")
    metrics.update_stats(0, 5, "car", "medium", "s3")
    metrics.update_stats(2, 4, "", "small", "s4")
    result = metrics.compute()
    assert result["samples"] == 4
    assert result["oIoU"] == pytest.approx(100 * 6 / 14)
    assert result["mIoU"] == pytest.approx(100 * (0.5 + 1 + 0 + 0.5) / 4)
    assert list(result["per_category"]) == ["car", "ship"]  # "" is left out
    ship = result["per_category"]["ship"]
    assert ship["samples"] == 2
    assert ship["oIoU"] == pytest.approx(80.0)
    assert ship["mIoU"] == pytest.approx(75.0)
    assert ship["Pr@0.5"] == pytest.approx(100.0)
    assert ship["Pr@0.6"] == pytest.approx(50.0)
    car = result["per_category"]["car"]
    assert (car["samples"], car["oIoU"], car["mIoU"]) == (1, 0.0, 0.0)
    assert list(result["per_size"]) == ["small", "medium", "large"]
    small = result["per_size"]["small"]
    assert small["samples"] == 2
    assert small["oIoU"] == pytest.approx(50.0)
    assert result["per_size"]["large"]["mIoU"] == pytest.approx(100.0)
    assert metrics.sample_ious()[0] == ("s1", 0.5)


def test_update_uses_original_area_for_size() -> None:
    metrics = ReferringMetrics()
    pred, gt = _masks(4, 4, 4)
    metrics.update(pred, gt, category="ship", gt_area_original=96 * 96)
    metrics.update(pred, gt, category="ship")  # falls back to gt's own area: 4 -> small
    assert list(metrics.compute()["per_size"]) == ["small", "large"]


def test_errors() -> None:
    metrics = ReferringMetrics()
    with pytest.raises(ValueError, match="no samples"):
        metrics.compute()
    with pytest.raises(ValueError, match="shape"):
        metrics.update(np.zeros((2, 2), bool), np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="intersection"):
        metrics.update_stats(3, 2, None, "small")
    with pytest.raises(ValueError, match="size_bucket"):
        metrics.update_stats(1, 2, None, "huge")


def test_one_pixel_objects_score_like_any_other() -> None:
    # tiny targets are common in remote sensing: a 1-pixel target hit exactly has I = U = 1
    gt = np.zeros((4, 5), dtype=bool)
    gt[2, 3] = True
    metrics = ReferringMetrics()
    metrics.update(gt.copy(), gt)  # IoU 1
    missed = np.zeros_like(gt)
    missed[0, 0] = True
    metrics.update(missed, gt)  # I = 0, U = 2: IoU 0
    result = metrics.compute()
    assert result["mIoU"] == pytest.approx(50.0)  # (1 + 0) / 2
    assert result["oIoU"] == pytest.approx(100 * 1 / 3)  # I = 1, U = 1 + 2
    assert result["Pr@0.9"] == pytest.approx(50.0)
