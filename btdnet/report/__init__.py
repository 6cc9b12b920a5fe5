"""Pictures and pages a person reads first: sample galleries, training curves, the report."""

from btdnet.report.curves import plot_training_curves, read_jsonl
from btdnet.report.gallery import select_gallery
from btdnet.report.page import write_report_html

__all__ = ["plot_training_curves", "read_jsonl", "select_gallery", "write_report_html"]
