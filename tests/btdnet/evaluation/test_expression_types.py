"""The kind of clue an expression gives, and the mean IoU of each kind."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from btdnet.evaluation.expression_types import expression_type, per_expression_type


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("The blue tennis court below the baseball field", "relation"),  # colour too: relation
        ("A blue tennis court located to the left of the windmill", "relation"),
        ("the ship next to the white airplane", "relation"),
        ("the vehicle on the left of the image", "position"),  # the image is no object
        ("The small baseball field located in the bottom left corner", "position"),
        ("The ship at the TOP  left", "position"),
        ("the storage tank in the centre", "position"),
        ("The small white ship", "colour"),
        ("the gray vehicle", "colour"),
        ("The large chimney", "category"),
        ("a leftover bluebird", "category"),  # words, not substrings
    ],
)
def test_each_kind_by_its_words_and_the_order_of_the_rules(text: str, kind: str) -> None:
    assert expression_type(text) == kind


def test_mean_iou_per_kind_by_hand() -> None:
    records = [
        SimpleNamespace(sample_id="a", expression="the red ship"),
        SimpleNamespace(sample_id="b", expression="the blue ship"),
        SimpleNamespace(sample_id="c", expression="the ship above the tank"),
        SimpleNamespace(sample_id="d", expression="the ship"),
        SimpleNamespace(sample_id="e", expression="the ship at the top"),  # no IoU: left out
    ]
    ious = {"a": 0.5, "b": 0.25, "c": 1.0, "d": 0.0}
    assert per_expression_type(records, ious) == {
        "relation": {"samples": 1, "mIoU": 100.0},
        "colour": {"samples": 2, "mIoU": pytest.approx(37.5)},
        "category": {"samples": 1, "mIoU": 0.0},
    }
