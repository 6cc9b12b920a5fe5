"""Benchmark runner: model -> predictions -> metrics, prediction files and reports."""

from btdnet.evaluation.prediction_files import (
    PROTOCOLS,
    prediction_filename,
    read_prediction,
    score_prediction_files,
    write_prediction,
)
from btdnet.evaluation.referring_eval import evaluate_referring
from btdnet.evaluation.report import format_markdown, write_json
from btdnet.evaluation.swap import SwappedExpressionDataset

__all__ = [
    "PROTOCOLS",
    "SwappedExpressionDataset",
    "evaluate_referring",
    "format_markdown",
    "prediction_filename",
    "read_prediction",
    "score_prediction_files",
    "write_json",
    "write_prediction",
]
