"""How large the referred object is for its image, and the score of each third of a split by
that measure (where two models differ by object size).

The LAVT family's size buckets (``per_size``: COCO's small < 32² <= medium < 96² pixels of
the original image) put every object of a small-image set in one bucket: at 128 x 128 pixels
the synthetic benchmark's largest object covers 950 pixels, all "small". The share of the image
the target covers says the same thing at any resolution, so here a split is cut into thirds by
that share: the cut points are the split's own 1/3 and 2/3 quantiles, computed over all its
targeted samples (the same for every model scored on it), and a sample at a cut point belongs
to the lower third. No-target samples (an empty mask) belong to no third.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

SIZE_THIRDS = ("small third", "middle third", "large third")
"""The thirds, smallest objects first."""


def area_share(record: Any) -> float:
    """The fraction of its image the record's target mask covers, in [0, 1]."""
    mask = record.mask.decode()  # bool (H, W) at the mask's own size
    return float(mask.mean()) if mask.size else 0.0


def third_cuts(shares: Sequence[float]) -> tuple[float, float]:
    """The 1/3 and 2/3 quantiles of ``shares`` (linear interpolation, numpy's default)."""
    if not shares:
        raise ValueError("third_cuts: no targeted sample to cut into thirds")
    low, high = np.quantile(np.asarray(shares, dtype=float), [1 / 3, 2 / 3])
    return float(low), float(high)


def size_third(share: float, cuts: tuple[float, float]) -> str:
    """The third ``share`` falls in (at a cut point: the lower one)."""
    low, high = cuts
    if share <= low:
        return SIZE_THIRDS[0]
    return SIZE_THIRDS[1] if share <= high else SIZE_THIRDS[2]


def per_relative_size(
    records: Iterable[Any], sample_ious: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """Mean IoU (percent), sample count and share range (percent of the image) of each third.

    ``records`` carry ``sample_id`` and ``mask`` (``ReferringRecord``); the cuts come from
    every record with a non-empty mask, the means from those with an IoU in ``sample_ious``
    (``{sample_id: IoU in [0, 1]}``). Returns ``{third: {"samples", "mIoU", "share_range"}}``
    in :data:`SIZE_THIRDS` order, for the thirds that hold a scored sample.
    """
    shares = {r.sample_id: area_share(r) for r in records}
    targeted = {sample: share for sample, share in shares.items() if share > 0}
    cuts = third_cuts(list(targeted.values()))
    ious: dict[str, list[float]] = {name: [] for name in SIZE_THIRDS}
    ranges: dict[str, list[float]] = {name: [] for name in SIZE_THIRDS}
    for sample, share in targeted.items():
        name = size_third(share, cuts)
        ranges[name].append(100.0 * share)
        if sample in sample_ious:
            ious[name].append(float(sample_ious[sample]))
    return {
        name: {
            "samples": len(values),
            "mIoU": 100.0 * sum(values) / len(values),
            "share_range": [min(ranges[name]), max(ranges[name])],
        }
        for name, values in ious.items()
        if values
    }


def relative_size_scores(dataset: Any, sample_ious: Mapping[str, float]) -> dict[str, float]:
    """``{third: mean IoU in percent}`` over a referring dataset's records (the ablation's
    per-run record; :func:`per_relative_size` keeps the counts and share ranges too)."""
    rows = per_relative_size(dataset.records, sample_ious)
    return {name: row["mIoU"] for name, row in rows.items()}


__all__ = [
    "SIZE_THIRDS",
    "area_share",
    "per_relative_size",
    "relative_size_scores",
    "size_third",
    "third_cuts",
]
