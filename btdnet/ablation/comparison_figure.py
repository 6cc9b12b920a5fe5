"""The picture of where two ablation variants differ: one panel per grouping (object size
thirds, kinds of expression, object categories), the two variants' mean scores over their seeds
side by side, with each side's spread over seeds as an error bar (none for a single seed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from btdnet.safe_write import atomic_output

PANELS = (
    ("per_relative_size", "object size (share of the image, thirds of the split)", "mean IoU"),
    ("per_expression", "kind of expression", "mean IoU"),
    ("per_category", "object category", "oIoU"),
)
"""``(comparison key, panel title, score)`` of each panel, in drawing order."""


def bar_rows(
    gaps: Mapping[str, Mapping[str, Any]], a: str, b: str
) -> list[tuple[str, float, float, float, float]]:
    """``(name, mean a, mean b, spread a, spread b)`` of each compared name, in the order of
    ``gaps`` (a :func:`~btdnet.ablation.diagnosis.category_gaps` result); a spread that cannot
    be measured (one seed) is 0 (no error bar)."""
    rows = []
    for name, row in gaps.items():
        spread = row.get("spread", {})
        rows.append((name, row[a], row[b], spread.get(a) or 0.0, spread.get(b) or 0.0))
    return rows


def _seed_counts(comparison: Mapping[str, Any], key: str, a: str, b: str) -> tuple[int, int]:
    """How many seeds each side's means are over (read from the first compared name)."""
    first = next(iter(comparison[key].values()))
    seeds = first.get("seeds", {})
    return int(seeds.get(a, 1)), int(seeds.get(b, 1))


def draw_comparison(comparison: Mapping[str, Any], path: Path) -> Path:
    """Draw the panels of ``comparison`` (``variants`` [a, b] and a gaps dict per key of
    :data:`PANELS`; keys it lacks or leaves empty are skipped) into the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    a, b = comparison["variants"]
    panels = [p for p in PANELS if comparison.get(p[0])]
    if not panels:
        raise ValueError("draw_comparison: the two variants share no scored group")
    figure, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8), squeeze=False)
    for axis, (key, title, score) in zip(axes[0], panels, strict=True):
        rows = bar_rows(comparison[key], a, b)
        where = np.arange(len(rows))
        width = 0.4
        for offset, column, label in ((-width / 2, 1, a), (width / 2, 2, b)):
            means = [row[column] for row in rows]
            spreads = [row[column + 2] for row in rows]
            bars = {"yerr": spreads, "capsize": 3} if any(spreads) else {}
            axis.bar(where + offset, means, width, label=label, **bars)
        axis.set_xticks(where, [row[0] for row in rows], rotation=35, ha="right", fontsize=8)
        axis.set_title(title, fontsize=9)
        axis.set_ylabel(f"{score} (%)")
        axis.grid(axis="y", alpha=0.3)
    seeds = _seed_counts(comparison, panels[0][0], a, b)
    handles, _ = axes[0][0].get_legend_handles_labels()
    labels = [f"{name} ({n} seed{'s' * (n != 1)})" for name, n in zip((a, b), seeds, strict=True)]
    figure.legend(handles, labels, loc="upper center", ncol=2, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 0.92))
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=90, format="png")
    plt.close(figure)
    return Path(path)


__all__ = ["PANELS", "bar_rows", "draw_comparison"]
