"""Referring-segmentation data: RRSIS-D and RefSegRS readers, the dataset and its check.

``build_referring_dataset(name, root, split, tokenizer)`` is the entry point; the record
loaders and :func:`check_referring_dataset` are exported for reports and tools.
"""

from btdnet.data.check import (
    check_referring_dataset,
    format_report,
    is_usable,
    problem_counts,
    summary_line,
)
from btdnet.data.dataset import REFERRING_LOADERS, ReferringDataset, build_referring_dataset
from btdnet.data.errors import DatasetError, Problem, UnsafePickleError
from btdnet.data.records import FileMask, LoadStats, ReferringRecord, RleMask
from btdnet.data.refsegrs import load_refsegrs_records
from btdnet.data.rrsisd import load_rrsisd_records
from btdnet.data.safe_pickle import safe_load_pickle
from btdnet.data.tokenize import tokenize_expression

__all__ = [
    "REFERRING_LOADERS",
    "DatasetError",
    "FileMask",
    "LoadStats",
    "Problem",
    "ReferringDataset",
    "ReferringRecord",
    "RleMask",
    "UnsafePickleError",
    "build_referring_dataset",
    "check_referring_dataset",
    "format_report",
    "is_usable",
    "load_refsegrs_records",
    "load_rrsisd_records",
    "problem_counts",
    "safe_load_pickle",
    "summary_line",
    "tokenize_expression",
]
