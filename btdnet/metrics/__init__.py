"""Metrics: referring segmentation (oIoU, mIoU, Pr@X) and the closed-set confusion matrix."""

from btdnet.metrics.confusion import ConfusionMatrix, confusion_counts
from btdnet.metrics.referring import (
    METRIC_KEYS,
    PR_KEYS,
    SIZE_BUCKETS,
    ReferringMetrics,
    size_bucket,
)

__all__ = [
    "METRIC_KEYS",
    "PR_KEYS",
    "SIZE_BUCKETS",
    "ConfusionMatrix",
    "ReferringMetrics",
    "confusion_counts",
    "size_bucket",
]
