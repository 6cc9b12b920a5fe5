"""What kind of clue a referring expression gives: a relation, a position, a colour or only a
category; the score of each kind (where two models differ by the kind of expression).

The rules read English words, first match wins, in this order:

- ``relation``: the target is placed relative to another object: ``left of``, ``right of``,
  ``above``, ``below``, ``next to``, ``near``, ``beside``, ``between``, ``behind``,
  ``in front of``, ``close to``, ``adjacent to`` (``left of the image`` and the like are a
  position, not a relation).
- ``position``: a place in the image: ``left``, ``right``, ``top``, ``bottom``, ``upper``,
  ``lower``, ``center``/``centre``, ``middle``, ``corner``.
- ``colour``: a basic colour term (``white``, ``grey``/``gray``, ``red`` ...).
- ``category``: none of these (the category word alone, perhaps with a size).

The synthetic benchmark's expressions use exactly these words (``btdnet.data.synthetic``); on
RRSIS-D or RefSegRS the rules are a reading of free text, as the peers' per-type analyses are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

EXPRESSION_TYPES = ("relation", "position", "colour", "category")
"""The kinds, in the order the rules try them."""

_IMAGE = r"(?:the\s+)?(?:image|picture|photo|scene|map)"
_RELATION = re.compile(
    r"\b(?:left of|right of|above|below|next to|near|beside|between|behind|in front of|"
    r"close to|adjacent to)\b(?!\s+" + _IMAGE + r"\b)"
)
_POSITION = re.compile(r"\b(?:left|right|top|bottom|upper|lower|center|centre|middle|corner)\b")
_COLOUR = re.compile(
    r"\b(?:white|black|grey|gray|red|green|blue|yellow|orange|brown|purple|pink|silver)\b"
)


def expression_type(text: str) -> str:
    """The kind of clue ``text`` gives (one of :data:`EXPRESSION_TYPES`)."""
    words = " ".join(text.lower().split())
    if _RELATION.search(words):
        return "relation"
    if _POSITION.search(words):
        return "position"
    if _COLOUR.search(words):
        return "colour"
    return "category"


def per_expression_type(
    records: Iterable[Any], sample_ious: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """Mean IoU (percent) and sample count of each kind present.

    ``records`` carry ``sample_id`` and ``expression``; ``sample_ious`` maps a sample id to its
    IoU in [0, 1] (``evaluate_referring(..., keep_samples=True)``). Samples without an IoU
    are left out. Returns ``{kind: {"samples": n, "mIoU": percent}}`` in
    :data:`EXPRESSION_TYPES` order.
    """
    scores: dict[str, list[float]] = {kind: [] for kind in EXPRESSION_TYPES}
    for record in records:
        iou = sample_ious.get(record.sample_id)
        if iou is not None:
            scores[expression_type(record.expression)].append(float(iou))
    return {
        kind: {"samples": len(values), "mIoU": 100.0 * sum(values) / len(values)}
        for kind, values in scores.items()
        if values
    }


def expression_scores(dataset: Any, sample_ious: Mapping[str, float]) -> dict[str, float]:
    """``{kind: mean IoU in percent}`` over a referring dataset's records (the ablation's
    per-run record; :func:`per_expression_type` keeps the sample counts too)."""
    rows = per_expression_type(dataset.records, sample_ious)
    return {kind: row["mIoU"] for kind, row in rows.items()}


__all__ = ["EXPRESSION_TYPES", "expression_scores", "expression_type", "per_expression_type"]
