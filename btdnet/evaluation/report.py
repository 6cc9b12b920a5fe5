"""Reports of referring results: a Markdown table and a JSON file, both with two decimals.

The JSON holds the same rounded numbers as the Markdown so that what is printed and what is
saved never differ. Top-level keys: ``samples``, ``oIoU``, ``mIoU``, ``Pr@0.5`` ... ``Pr@0.9``
(percentages), ``protocol``, ``split``, ``per_category``, ``per_size``, plus any extra keys
the caller added (dataset, checkpoint, ...). Generalized results (sets with no-target samples,
models with a presence head) add ``gIoU``, ``cIoU``, ``N_acc``, ``T_acc``, ``samples_targeted``
and ``samples_no_target``; their oIoU ... Pr@X are over the targeted samples.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from btdnet.metrics.generalized import GENERALIZED_KEYS
from btdnet.metrics.referring import METRIC_KEYS
from btdnet.safe_write import write_text_atomic

PROTOCOL_NOTES = {
    "lavt": "IoU at the input resolution (LAVT protocol; GT resized with nearest)",
    "original": "IoU at the original image resolution (prediction up-sampled)",
}


def _fmt(value: Any) -> str:
    """Two-decimal string of a number, ``-`` when missing."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{float(value):.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown table lines; the first column left-aligned, the others right-aligned."""
    align = [":---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _metric_cells(entry: dict[str, Any]) -> list[str]:
    """``samples`` and the metric columns of one result entry."""
    return [str(int(entry.get("samples", 0)))] + [_fmt(entry.get(key)) for key in METRIC_KEYS]


def _generalized_lines(results: dict[str, Any], split: str, protocol: str) -> list[str]:
    """The generalized table (ReLA's metrics) and the heading of the targeted one."""
    counts = [str(results.get(k, 0)) for k in ("samples", "samples_targeted", "samples_no_target")]
    cells = [
        "n/a" if results.get(k) is None and f"{k}_note" in results else _fmt(results.get(k))
        for k in GENERALIZED_KEYS
    ]
    lines = _table(
        ["split", "protocol", "samples", "targeted", "no-target", *GENERALIZED_KEYS],
        [[split, protocol, *counts, *cells]],
    )
    notes = [f"{k} {results[f'{k}_note']}." for k in GENERALIZED_KEYS if f"{k}_note" in results]
    lines += ["", *notes] if notes else []
    lines += [
        "",
        "Generalized referring (ReLA): gIoU = mean per-sample IoU (a no-target sample answered "
        "empty scores 1), cIoU = sum(I)/sum(U) over all samples, N_acc / T_acc = no-target "
        "answered empty / targeted answered non-empty. Targeted samples only:",
        "",
    ]
    return lines


def format_markdown(results: dict[str, Any]) -> str:
    """Markdown report: the main table, then per-category and per-size tables.

    Columns: split, protocol, samples, oIoU, mIoU, Pr@0.5 ... Pr@0.9 (percentages, two
    decimals; Pr@X counts IoU >= X). Generalized results get a first table with gIoU, cIoU,
    N_acc and T_acc; the LAVT table then covers the targeted samples.
    """
    split = str(results.get("split", "?"))
    protocol = str(results.get("protocol", "?"))
    lines: list[str] = []
    main = results
    if "gIoU" in results:
        lines += _generalized_lines(results, split, protocol)
        main = {**results, "samples": results.get("samples_targeted", 0)}
    lines += _table(
        ["split", "protocol", "samples", *METRIC_KEYS],
        [[split, protocol, *_metric_cells(main)]],
    )
    note = PROTOCOL_NOTES.get(protocol)
    if note:
        lines += ["", f"Protocol `{protocol}`: {note}. Pr@X counts IoU >= X."]
    per_category = results.get("per_category") or {}
    if per_category:
        lines += ["", f"Per category ({split}, {protocol}):", ""]
        lines += _table(
            ["category", "samples", *METRIC_KEYS],
            [[name, *_metric_cells(entry)] for name, entry in per_category.items()],
        )
    per_size = results.get("per_size") or {}
    if per_size:
        lines += [
            "",
            f"Per object size ({split}, {protocol}; GT area at original resolution, "
            "small < 32², medium < 96², large otherwise):",
            "",
        ]
        lines += _table(
            ["size", "samples", *METRIC_KEYS],
            [[name, *_metric_cells(entry)] for name, entry in per_size.items()],
        )
    return "\n".join(lines) + "\n"


def round_floats(value: Any, digits: int = 2) -> Any:
    """Recursively round every float in dicts/lists to ``digits`` decimals."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: round_floats(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_floats(item, digits) for item in value]
    return value


def write_json(results: dict[str, Any], path: str | Path) -> Path:
    """Write ``results`` (floats rounded to two decimals) as indented JSON; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(round_floats(results), indent=2) + "\n")
    return path
