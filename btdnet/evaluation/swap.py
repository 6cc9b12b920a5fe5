"""A referring dataset with swapped expressions, to check that language matters.

Each kept sample keeps its image and ground-truth mask but takes the expression (``text``,
``input_ids``, ``attention_mask``) of another sample of the same image that refers to a
different object. A model that reads the expression should score a clearly lower oIoU on it
than on the original pairs; a model that ignores language scores about the same.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import numpy as np
from torch.utils.data import Dataset

_TEXT_KEYS = ("text", "input_ids", "attention_mask")


class SwappedExpressionDataset(Dataset):
    """Wrap a ``ReferringDataset`` and swap each sample's expression with a partner's.

    Partners share ``image_id`` and refer to a different object: records with an ``ann_id``
    attribute are compared by it, others by their original masks (different mask = different
    object). Samples with no partner are dropped (``.dropped`` counts them). The choice among
    candidates is random but deterministic for a ``seed``.

    Items are the base items with the partner's text keys, plus ``partner_index`` and
    ``partner_sample_id``. ``index`` stays the base dataset's position, so ``records``,
    ``original_mask`` and ``split`` are the base dataset's (this makes the wrapper usable with
    ``evaluate_referring``; it is not meant for ``score_prediction_files``).
    """

    def __init__(self, dataset: Any, seed: int = 0) -> None:
        if not hasattr(dataset, "records"):
            raise TypeError(
                f"SwappedExpressionDataset: {type(dataset).__name__} has no 'records'; "
                "wrap a ReferringDataset"
            )
        self.dataset = dataset
        self.seed = seed
        groups: dict[str, list[int]] = defaultdict(list)
        for index, record in enumerate(dataset.records):
            groups[str(record.image_id)].append(index)
        rng = random.Random(seed)
        self._mask_cache: dict[int, np.ndarray] = {}
        self.indices: list[int] = []
        self.partners: list[int] = []
        for index, record in enumerate(dataset.records):
            group = groups[str(record.image_id)]
            candidates = [j for j in group if j != index and self._different_object(index, j)]
            if candidates:
                self.indices.append(index)
                self.partners.append(rng.choice(candidates))
        self.dropped = len(dataset.records) - len(self.indices)
        self._mask_cache.clear()

    def _mask(self, index: int) -> np.ndarray:
        """Original mask of base sample ``index`` (cached while pairing)."""
        if index not in self._mask_cache:
            mask = np.asarray(self.dataset.original_mask(index), dtype=bool)
            self._mask_cache[index] = mask
        return self._mask_cache[index]

    def _different_object(self, i: int, j: int) -> bool:
        """Whether base samples ``i`` and ``j`` refer to different objects."""
        ann_i = getattr(self.dataset.records[i], "ann_id", None)
        ann_j = getattr(self.dataset.records[j], "ann_id", None)
        if ann_i is not None and ann_j is not None:
            return ann_i != ann_j
        mask_i, mask_j = self._mask(i), self._mask(j)
        return mask_i.shape != mask_j.shape or not np.array_equal(mask_i, mask_j)

    @property
    def records(self) -> list[Any]:
        """The base dataset's records (indexed by the items' ``index``)."""
        return self.dataset.records

    @property
    def split(self) -> str | None:
        """The base dataset's split, when it has one."""
        return getattr(self.dataset, "split", None)

    def original_mask(self, index: int) -> np.ndarray:
        """Original-size mask of base sample ``index``."""
        return self.dataset.original_mask(index)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict[str, Any]:
        index, partner = self.indices[position], self.partners[position]
        item = dict(self.dataset[index])
        partner_item = self.dataset[partner]
        for key in _TEXT_KEYS:
            if key in partner_item:
                item[key] = partner_item[key]
        item["partner_index"] = partner
        item["partner_sample_id"] = str(self.dataset.records[partner].sample_id)
        return item
