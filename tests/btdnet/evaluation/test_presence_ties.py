"""Tie rules of the presence calibration and T_acc's "answered non-empty", with cases where the
plausible wrong rules (lowest, highest, first in the table, "found the target") disagree."""

from __future__ import annotations

import pytest

from btdnet.evaluation.presence_calibration import (
    PresenceRow,
    choose_threshold,
    rows_at_threshold,
    sweep_rows,
)
from btdnet.metrics.generalized import GeneralizedMetrics


def table(*rows: tuple) -> list[dict]:
    keys = ("threshold", "gIoU", "N_acc", "T_acc")
    return [dict(zip(keys, row)) for row in rows]


def test_giou_tie_goes_to_the_closest_to_one_half_not_the_lowest_or_first() -> None:
    # tied at 80: 0.7 (first), 0.1 (lowest), 0.45 (closest to 0.5), 0.9 (highest)
    rows = table((0.7, 80.0), (0.1, 80.0), (0.45, 80.0), (0.9, 80.0), (0.5, 79.9))
    assert choose_threshold(rows, "gIoU") == 0.45
    # a difference under 1e-9 is a tie; 0.5 itself then wins
    rows = table((0.3, 80.0), (0.5, 80.0 - 1e-12), (0.2, 80.0))
    assert choose_threshold(rows, "gIoU") == 0.5


def test_equally_close_thresholds_go_to_the_lower_whatever_their_order() -> None:
    assert choose_threshold(table((0.6, 70.0), (0.4, 70.0), (0.9, 70.0)), "gIoU") == 0.4
    assert choose_threshold(table((0.4, 70.0), (0.6, 70.0)), "gIoU") == 0.4


def test_balanced_tie_goes_to_better_giou_then_closest() -> None:
    # min(N, T) = 70 at 0.2, 0.35 and 0.8; the best gIoU among them, 60, at 0.2 and 0.8,
    # equally close to 0.5 (0.3 each): the lower. 0.35 is closer but has a worse gIoU.
    rows = table(
        (0.8, 60.0, 70.0, 90.0),
        (0.2, 60.0, 90.0, 70.0),
        (0.35, 59.0, 70.0, 70.0),
        (0.5, 99.0, 69.0, 100.0),  # the best gIoU, but min 69
    )
    assert choose_threshold(rows) == 0.2
    rows[1]["threshold"] = 0.15  # now 0.8 is the closer of the two
    assert choose_threshold(rows) == 0.8
    assert choose_threshold(rows, "gIoU") == 0.5


def test_presence_equal_to_the_threshold_paints_the_mask() -> None:
    rows = [PresenceRow(3, 4, 4, False, 0.5), PresenceRow(0, 2, 2, True, 0.5)]
    at = rows_at_threshold(rows, 0.5).compute()
    assert at["T_acc"] == 100.0 and at["N_acc"] == 0.0  # both painted
    above = rows_at_threshold(rows, 0.5000001).compute()
    assert above["T_acc"] == 0.0 and above["N_acc"] == 100.0
    assert [r["threshold"] for r in sweep_rows(rows, [0.5, 0.7])] == [0.5, 0.7]


def test_t_acc_counts_answered_non_empty_even_when_the_answer_misses() -> None:
    """T_acc asks "did the model answer?" (non-empty), not "did it find the target"."""
    metrics = GeneralizedMetrics()
    metrics.update_stats(0, 9, 4, no_target=False)  # answered, missed: I = 0
    metrics.update_stats(0, 5, 0, no_target=False)  # answered "no target"
    metrics.update_stats(2, 6, 3, no_target=False)  # answered, partly right
    metrics.update_stats(0, 3, 3, no_target=True)  # no-target, answered non-empty
    metrics.update_stats(0, 0, 0, no_target=True)  # no-target, answered empty
    result = metrics.compute()
    assert result["T_acc"] == pytest.approx(100 * 2 / 3)
    assert result["N_acc"] == pytest.approx(50.0)
    # gIoU: 0, 0, 2/6, 0, 1 over 5 samples; cIoU: 2 / (9 + 5 + 6 + 3 + 0)
    assert result["gIoU"] == pytest.approx(100 * (2 / 6 + 1) / 5)
    assert result["cIoU"] == pytest.approx(100 * 2 / 23)


def test_balanced_ties_within_the_tolerance_of_1e9() -> None:
    # min(N, T) 70 at 0.3 and 70 - 1e-10 at 0.6 (floating-point noise of the same count): a
    # tie, so the better gIoU (0.6) wins; 1e-8 below is not a tie
    rows = table((0.3, 50.0, 70.0, 90.0), (0.6, 60.0, 90.0, 70.0 - 1e-10))
    assert choose_threshold(rows) == 0.6
    rows = table((0.3, 50.0, 70.0, 90.0), (0.6, 60.0, 90.0, 70.0 - 1e-8))
    assert choose_threshold(rows) == 0.3
