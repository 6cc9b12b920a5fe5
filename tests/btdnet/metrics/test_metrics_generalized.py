"""GeneralizedMetrics (ReLA's gIoU, cIoU, N_acc, T_acc) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from btdnet.metrics import GeneralizedMetrics, ReferringMetrics


def _mask(cells: list[tuple[int, int]], shape: tuple[int, int] = (5, 7)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for row, col in cells:
        mask[row, col] = True
    return mask


def test_four_kinds_of_answer_by_hand() -> None:
    # A targeted, found: gt 4 px, pred 2 of them + 1 outside -> I=2, U=5, IoU 0.4
    # B targeted, answered "no target" (empty): I=0, U=3, IoU 0
    # C no-target, answered empty: IoU 1, adds nothing to I or U
    # D no-target, answered with 2 px: IoU 0, adds 2 to U
    gt_a = _mask([(0, 0), (0, 1), (1, 0), (1, 1)])
    pred_a = _mask([(0, 0), (0, 1), (4, 6)])
    gt_b = _mask([(2, 2), (2, 3), (2, 4)])
    empty = _mask([])
    pred_d = _mask([(3, 3), (3, 4)])
    metrics = GeneralizedMetrics()
    metrics.update(pred_a, gt_a, category="ship")
    metrics.update(empty, gt_b, category="ship")
    metrics.update(empty, empty, no_target=True)
    metrics.update(pred_d, empty)  # no_target inferred from the empty ground truth
    result = metrics.compute()
    assert result["samples"] == 4
    assert result["samples_targeted"] == 2 and result["samples_no_target"] == 2
    assert result["gIoU"] == pytest.approx(100 * (0.4 + 0 + 1 + 0) / 4)  # 35
    assert result["cIoU"] == pytest.approx(100 * 2 / (5 + 3 + 0 + 2))  # 20
    assert result["N_acc"] == pytest.approx(50.0)  # C right, D wrong
    assert result["T_acc"] == pytest.approx(50.0)  # A answered, B not
    # targeted-only LAVT metrics: oIoU = 2/8, mIoU = (0.4 + 0) / 2, Pr@0.5 = 0
    assert result["oIoU"] == pytest.approx(25.0)
    assert result["mIoU"] == pytest.approx(20.0)
    assert result["Pr@0.5"] == 0.0
    assert set(result["per_category"]) == {"ship"}


def test_targeted_only_set_equals_the_lavt_metrics() -> None:
    rng = np.random.default_rng(3)
    general, lavt = GeneralizedMetrics(), ReferringMetrics()
    for _ in range(6):
        gt = rng.random((9, 11)) > 0.6
        gt[0, 0] = True
        pred = rng.random((9, 11)) > 0.5
        general.update(pred, gt)
        lavt.update(pred, gt)
    result, expected = general.compute(), lavt.compute()
    for key, value in expected.items():
        assert result[key] == value
    assert result["N_acc"] is None and result["samples_no_target"] == 0


def test_all_no_target_answered_empty() -> None:
    metrics = GeneralizedMetrics()
    for _ in range(3):
        metrics.update(_mask([]), _mask([]), no_target=True)
    result = metrics.compute()
    assert result["gIoU"] == 100.0 and result["cIoU"] == 100.0 and result["N_acc"] == 100.0
    assert result["T_acc"] is None and "oIoU" not in result


def test_bad_statistics_are_refused() -> None:
    metrics = GeneralizedMetrics()
    with pytest.raises(ValueError, match="no-target"):
        metrics.update_stats(2, 5, 3, no_target=True)
    with pytest.raises(ValueError, match="pred_area <= union"):
        metrics.update_stats(1, 2, 3, no_target=False)
    with pytest.raises(ValueError, match="differs"):
        metrics.update(_mask([]), np.zeros((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="no samples"):
        GeneralizedMetrics().compute()
    metrics.update_stats(0, 4, 0, no_target=False)
    metrics.reset()
    assert len(metrics) == 0 and len(metrics.targeted) == 0


def test_report_is_generalized_exactly_when_the_set_has_a_no_target_sample() -> None:
    # targeted only: report() is the classic LAVT dict (no gIoU), unless generalized is asked
    classic = GeneralizedMetrics()
    classic.update(_mask([(0, 0), (0, 1)]), _mask([(0, 0)]))  # I=1, U=2
    assert classic.report() == classic.targeted.compute()
    assert "gIoU" not in classic.report() and "N_acc" not in classic.report()
    assert classic.report(generalized=True)["gIoU"] == pytest.approx(50.0)
    # one no-target sample (answered empty: IoU 1) makes the report generalized by itself
    mixed = GeneralizedMetrics()
    mixed.update(_mask([(0, 0), (0, 1)]), _mask([(0, 0)]))
    mixed.update(_mask([]), _mask([]), no_target=True)
    report = mixed.report()
    assert report["gIoU"] == pytest.approx(100 * (0.5 + 1.0) / 2)  # 75
    assert report["N_acc"] == 100.0 and report["T_acc"] == 100.0
    assert report["oIoU"] == pytest.approx(50.0)  # the targeted sample alone


def test_per_sample_generalized_iou_by_hand() -> None:
    metrics = GeneralizedMetrics()
    metrics.update(_mask([(0, 0), (0, 1)]), _mask([(0, 0)]), sample_id="a")  # I 1, U 2
    metrics.update(_mask([]), _mask([]), no_target=True, sample_id="b")  # empty answer: 1
    metrics.update(_mask([(1, 1)]), _mask([]), no_target=True, sample_id="c")  # painted: 0
    metrics.update(_mask([]), _mask([(2, 2)]), sample_id="d")  # target missed: 0
    assert metrics.sample_ious() == [("a", 0.5), ("b", 1.0), ("c", 0.0), ("d", 0.0)]


def test_the_size_bucket_is_the_area_at_the_original_resolution() -> None:
    # 4 px after resizing (small), but 2000 px in the original image: medium (1024 <= a < 9216)
    gt = _mask([(0, 0), (0, 1), (1, 0), (1, 1)])
    metrics = GeneralizedMetrics()
    metrics.update(gt, gt, gt_area_original=2000)
    metrics.update(gt, gt)  # no original area given: the mask's own 4 px, small
    metrics.update(_mask([]), gt, gt_area_original=10_000)  # large, missed
    per_size = metrics.compute()["per_size"]
    assert {name: stats["samples"] for name, stats in per_size.items()} == {
        "small": 1,
        "medium": 1,
        "large": 1,
    }
    assert per_size["medium"]["mIoU"] == 100.0 and per_size["large"]["mIoU"] == 0.0
