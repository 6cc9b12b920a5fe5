"""Records a run made before they existed, scored again from its kept checkpoint.

A finished run's ``result.json`` holds what the runner recorded at the time. Two records came
later: the mean IoU per kind of expression (``per_expression_mIoU``) and per third of the test
split by object size (``per_relative_size_mIoU``). A run that kept its checkpoints
(``--keep-checkpoints``) is scored again from its ``best`` checkpoint on the ablation's own test
split, to the same per-sample IoUs (the scoring is deterministic), and the records are added.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from btdnet.ablation.plan import RESULT_NAME, read_result
from btdnet.safe_write import write_text_atomic

EXPRESSION_KEY = "per_expression_mIoU"
"""A run result's mean IoU per kind of expression (relation, position, colour, category)."""
SIZE_KEY = "per_relative_size_mIoU"
"""A run result's mean IoU per third of the test split by the target's share of the image."""
LATER_RECORDS = (EXPRESSION_KEY, SIZE_KEY)
"""The records a run made before they existed lacks."""


def missing_records(result: Mapping[str, Any]) -> list[str]:
    """The later records ``result`` lacks, in :data:`LATER_RECORDS` order."""
    return [key for key in LATER_RECORDS if key not in result]


def later_records(dataset: Any, sample_ious: Any) -> dict[str, dict[str, float]]:
    """The later records of a test split's per-sample IoUs: what a run records when it
    finishes and what :func:`score_records` adds to an older run (one computation for both)."""
    from btdnet.evaluation.expression_types import expression_scores
    from btdnet.evaluation.relative_size import relative_size_scores

    return {
        EXPRESSION_KEY: expression_scores(dataset, sample_ious),
        SIZE_KEY: relative_size_scores(dataset, sample_ious),
    }


def score_records(run: Path, data_root: Path) -> dict[str, dict[str, float]] | None:
    """Every later record of the finished run in folder ``run`` (``.../seed-<k>``), scored from
    its kept ``best`` checkpoint on the test split under ``data_root``; None when the run kept
    no checkpoint."""
    from btdnet.engine.accelerator import make_accelerator
    from btdnet.evaluation.checkpoint_scores import load_test_split, score_dataset
    from btdnet.models import load_model

    best = run / "train" / "checkpoints" / "best"
    if not best.is_dir():
        return None
    accelerator = make_accelerator()
    model = load_model(best).to(accelerator.device)
    test = load_test_split(model, data_root)
    return later_records(test, score_dataset(model, test, accelerator, 32)["sample_ious"])


def fill_missing_records(
    out: Path, *, report: Callable[[str], None] = print
) -> tuple[list[Path], list[Path]]:
    """Add the later records to every finished run of the ablation folder ``out`` that lacks
    them and kept its checkpoint; its ``result.json`` is rewritten (atomically) with them and
    ``records_added`` naming them. Returns ``(filled, left)``: the results filled, and those
    that lack records and kept no checkpoint."""
    filled: list[Path] = []
    left: list[Path] = []
    for path in sorted((out / "runs").glob(f"*/seed-*/{RESULT_NAME}")):
        result = read_result(path)  # a file that is not a result: one line naming it
        lacking = missing_records(result)
        if not lacking:
            continue
        scores = score_records(path.parent, out / "data")
        if scores is None:
            left.append(path)
            report(f"{path}: kept no checkpoint; {', '.join(lacking)} cannot be added")
            continue
        added = {key: scores[key] for key in lacking}
        result = {**result, **added, "records_added": [*result.get("records_added", []), *added]}
        write_text_atomic(path, json.dumps(result, indent=2) + "\n")
        filled.append(path)
        report(f"{path}: added {', '.join(lacking)}")
    return filled, left


__all__ = [
    "EXPRESSION_KEY",
    "LATER_RECORDS",
    "SIZE_KEY",
    "fill_missing_records",
    "later_records",
    "missing_records",
    "score_records",
]
