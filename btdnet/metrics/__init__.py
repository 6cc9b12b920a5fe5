"""Metrics: referring segmentation (oIoU, mIoU, Pr@X; generalized gIoU, cIoU, N_acc, T_acc) and
the closed-set confusion matrix."""

from btdnet.metrics.confusion import ConfusionMatrix, confusion_counts
from btdnet.metrics.generalized import GENERALIZED_KEYS, GeneralizedMetrics
from btdnet.metrics.referring import (
    METRIC_KEYS,
    PR_KEYS,
    SIZE_BUCKETS,
    ReferringMetrics,
    size_bucket,
)

__all__ = [
    "GENERALIZED_KEYS",
    "METRIC_KEYS",
    "PR_KEYS",
    "SIZE_BUCKETS",
    "ConfusionMatrix",
    "GeneralizedMetrics",
    "ReferringMetrics",
    "confusion_counts",
    "size_bucket",
]
