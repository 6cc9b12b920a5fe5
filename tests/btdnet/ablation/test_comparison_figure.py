"""The picture of where two ablation variants differ."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from btdnet.ablation.comparison_figure import _seed_counts, bar_rows, draw_comparison
from btdnet.ablation.diagnosis import category_gaps

RESULTS = [
    {"variant": "a", "per_category": {"ship": 50.0}, "per_expression_mIoU": {"colour": 40.0}},
    {"variant": "a", "per_category": {"ship": 60.0}, "per_expression_mIoU": {"colour": 44.0}},
    {"variant": "b", "per_category": {"ship": 70.0}, "per_expression_mIoU": {"colour": 30.0}},
]


def test_bars_are_the_seed_means_and_spreads_a_single_seed_has_no_error_bar() -> None:
    gaps = category_gaps(RESULTS, "a", "b")
    assert bar_rows(gaps, "a", "b") == [("ship", 55.0, 70.0, pytest.approx(50**0.5), 0.0)]
    assert _seed_counts({"per_category": gaps}, "per_category", "a", "b") == (2, 1)  # legend


def test_the_figure_has_a_panel_per_group_and_refuses_an_empty_comparison(tmp_path: Path):
    comparison = {
        "variants": ["a", "b"],
        "per_category": category_gaps(RESULTS, "a", "b"),
        "per_expression": category_gaps(RESULTS, "a", "b", "per_expression_mIoU"),
        "per_relative_size": {},
    }
    two = draw_comparison(comparison, tmp_path / "two.png")
    one = draw_comparison({**comparison, "per_expression": {}}, tmp_path / "one.png")
    # a panel is 4.4 inches wide at 90 dpi
    assert Image.open(two).width == pytest.approx(2 * 4.4 * 90, abs=2)
    assert Image.open(one).width == pytest.approx(4.4 * 90, abs=2)
    with pytest.raises(ValueError, match="share no scored group"):
        draw_comparison({"variants": ["a", "b"], "per_category": {}}, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
