"""Which samples to show: the best, the median and the worst by IoU."""

from __future__ import annotations


def select_gallery(sample_ious: dict[str, float]) -> list[tuple[str, str, float]]:
    """``(label, sample_id, iou)`` for the best, median and worst sample by IoU.

    Ties are broken by sample id so the choice is reproducible; with fewer than three samples
    some labels point at the same sample and are given once.
    """
    if not sample_ious:
        return []
    ranked = sorted(sample_ious.items(), key=lambda item: (-item[1], item[0]))  # best first
    picks = [("best", ranked[0]), ("median", ranked[(len(ranked) - 1) // 2]), ("worst", ranked[-1])]
    chosen: list[tuple[str, str, float]] = []
    for label, (sample_id, iou) in picks:
        if all(sample_id != other for _, other, _ in chosen):
            chosen.append((label, sample_id, iou))
    return chosen
