"""Optional negatives for single-target sets (RRSIS-D): no-target samples made by pairing an
expression with another image that holds no object of its category.

Generalized referring needs expressions whose target is absent. A single-target set has none,
but each of its expressions names a category, and an image whose annotations hold no object
of that category cannot contain what the expression describes. :func:`add_negatives` adds,
for a share of the samples, a copy of the expression paired with such an image (same split,
drawn with a seeded generator), marked no-target (``target_count`` 0, empty mask).

Limitation: "holds no object of the category" is judged from the annotations in
``instances.json``; an unannotated object of that category in the other image would make the
negative false. Off by default (``data.negatives: 0``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from btdnet.data.errors import DatasetError
from btdnet.data.records import EmptyMask, ReferringRecord
from btdnet.data.transforms import read_image_size


def image_categories_from_instances(path: str | Path) -> dict[str, set[int]]:
    """``{image_id (str): category ids of its annotations}`` from a COCO-style instances file
    (``category_id`` or RRSIS-D's ``categories_id``)."""
    path = Path(path)
    try:
        instances = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DatasetError(f"{path}: cannot read the annotations for negatives ({exc})") from exc
    table: dict[str, set[int]] = {}
    for annotation in instances.get("annotations", []) if isinstance(instances, dict) else []:
        if not isinstance(annotation, dict):
            continue
        category = annotation.get("category_id", annotation.get("categories_id"))
        if isinstance(category, int) and "image_id" in annotation:
            table.setdefault(str(annotation["image_id"]), set()).add(category)
    return table


def add_negatives(
    records: list[ReferringRecord],
    image_categories: dict[str, set[int]],
    *,
    share: float,
    seed: int = 0,
) -> list[ReferringRecord]:
    """Return ``records`` plus about ``share * len(records)`` no-target samples.

    Each negative copies a sample's expression, category and split, takes another image of the
    records that holds no object of that category, and gets the sample id
    ``<sample id>-neg<image id>`` (file-name safe, unique). Samples of unknown category
    (``category_id`` -1) are never used. Deterministic for a given ``seed``.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"negatives share must lie in [0, 1], got {share}")
    if share == 0.0 or not records:
        return list(records)
    images: dict[str, ReferringRecord] = {}
    for record in records:
        images.setdefault(record.image_id, record)
    image_ids = sorted(images)
    rng = np.random.default_rng(seed)
    count = round(share * len(records))
    sources = [r for r in records if r.category_id >= 0]
    negatives: list[ReferringRecord] = []
    for position in rng.permutation(len(sources))[:count] if sources else []:
        source = sources[int(position)]
        free = [
            i
            for i in image_ids
            if i != source.image_id and source.category_id not in image_categories.get(i, set())
        ]
        if not free:
            continue
        other = images[free[int(rng.integers(len(free)))]]
        negatives.append(_negative(source, other))
    return list(records) + negatives


def _negative(source: ReferringRecord, other: ReferringRecord) -> ReferringRecord:
    size: Any = other.image_size or read_image_size(other.image_path) or (1, 1)
    mask = EmptyMask(int(size[0]), int(size[1]), str(other.image_path), "negative (no target)")
    return replace(
        source,
        sample_id=f"{source.sample_id}-neg{other.image_id}",
        image_path=other.image_path,
        image_id=other.image_id,
        mask=mask,
        image_size=other.image_size,
        target_count=0,
    )
