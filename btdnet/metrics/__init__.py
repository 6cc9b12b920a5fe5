"""Metrics: referring segmentation (oIoU, mIoU, Pr@X) and the closed-set confusion matrix."""

from btdnet.metrics.confusion import (
    ClosedSetProtocol,
    ConfusionMatrix,
    closed_set_protocol,
    confusion_counts,
)
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
    "ClosedSetProtocol",
    "ConfusionMatrix",
    "ReferringMetrics",
    "closed_set_protocol",
    "confusion_counts",
    "size_bucket",
]
