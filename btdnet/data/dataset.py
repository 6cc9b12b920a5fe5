"""The referring-segmentation dataset: records in, model-ready tensors out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from btdnet.data.grefs import load_grefs_records
from btdnet.data.negatives import add_negatives, image_categories_from_instances
from btdnet.data.records import LoadStats, ReferringRecord
from btdnet.data.refsegrs import load_refsegrs_records
from btdnet.data.rrsisd import load_rrsisd_records
from btdnet.data.tokenize import tokenize_expression
from btdnet.data.transforms import (
    image_to_tensor,
    read_image_size,
    read_rgb_image,
    resize_mask,
)

RecordLoader = Callable[..., tuple[list[ReferringRecord], LoadStats]]

# name -> record loader ``(root, split, *, read_image_sizes, strict)``
REFERRING_LOADERS: dict[str, RecordLoader] = {
    "rrsisd": load_rrsisd_records,
    "refsegrs": load_refsegrs_records,
    "grefs": load_grefs_records,
}


# name -> the COCO annotations file under the root (for negatives)
INSTANCES_FILES: dict[str, str] = {"rrsisd": "rrsisd/instances.json", "grefs": "instances.json"}


class ReferringDataset(Dataset):
    """Referring samples as dicts of tensors (see ``docs/architecture.md`` for the keys).

    Each item reads its image and decodes its mask. Image (bilinear) and mask (nearest) are
    resized to ``image_size`` x ``image_size``, each from its own size: a mask whose size differs
    from its image (RRSIS-D has 800x787 JPEGs with 800x800 masks) is resized once, straight to
    ``image_size``, as the LAVT family's loaders do (resizing it to the image first would move or
    drop thin objects). Nothing is flipped or cropped. The item's mask is the peers' reading at
    that size (``at_input_size`` of the mask source: RRSIS-D's overlapping RLE parts as the LAVT
    family reads them, gRefCOCO polygons rasterised at the input size as ReLA does);
    ``original_mask`` is the union at the image's own size (for the ``original`` protocol and the
    size buckets).

    Args:
        records: the samples, e.g. from :func:`load_rrsisd_records`.
        tokenizer: a Hugging Face tokenizer, or ``None`` for items without token ids.
        image_size: side ``S`` of the square model input.
        max_tokens: length ``T`` of ``input_ids`` / ``attention_mask``.
        stats: what the loader found (kept for reports).
    """

    def __init__(
        self,
        records: Sequence[ReferringRecord],
        tokenizer: Any | None,
        *,
        image_size: int = 480,
        max_tokens: int = 20,
        stats: LoadStats | None = None,
    ) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self._records = list(records)
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.max_tokens = max_tokens
        self.stats = stats

    @property
    def records(self) -> list[ReferringRecord]:
        """The samples, in item order."""
        return self._records

    def __len__(self) -> int:
        return len(self._records)

    def _record(self, index: int) -> ReferringRecord:
        if not -len(self._records) <= index < len(self._records):
            raise IndexError(f"index {index} out of range for {len(self._records)} samples")
        return self._records[index]

    def original_mask(self, index: int) -> np.ndarray:
        """Bool (H, W) target mask at the original size of the sample's image."""
        record = self._record(index)
        size = record.image_size or read_image_size(record.image_path)
        if size is None:  # unreadable header: decoding the image gives the cause
            image = read_rgb_image(record.image_path)
            size = (image.height, image.width)
        return resize_mask(record.mask.decode(), *size)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self._record(index)
        index = index % len(self._records)
        image = read_rgb_image(record.image_path)
        mask = record.mask.at_input_size(self.image_size)  # (S, S) bool, as the peers read it
        item: dict[str, Any] = {
            "pixel_values": image_to_tensor(image, self.image_size),  # (3, S, S)
            "mask": torch.from_numpy(mask.astype(np.int64)),  # (S, S), one resize from (h, w)
            "text": record.expression,
            "category": record.category,
            "category_id": record.category_id,
            "sample_id": record.sample_id,
            "image_id": record.image_id,
            "orig_size": torch.tensor([image.height, image.width], dtype=torch.int64),
            "index": index,
            "present": int(not record.no_target),
        }
        if self.tokenizer is not None:
            input_ids, attention_mask = tokenize_expression(
                self.tokenizer, record.expression, self.max_tokens
            )
            item["input_ids"] = input_ids  # (T,)
            item["attention_mask"] = attention_mask  # (T,)
        return item


def build_referring_dataset(
    name: str,
    root: str | Path,
    split: str,
    tokenizer: Any | None,
    image_size: int = 480,
    max_tokens: int = 20,
    *,
    negatives: float = 0.0,
    negatives_seed: int = 0,
) -> ReferringDataset:
    """Index ``split`` of data set ``name`` ("rrsisd", "refsegrs" or "grefs") under ``root``.

    Synthetic sets are written in RRSIS-D's layout and read with ``name="rrsisd"`` (the
    generalized ones in gRefCOCO's, ``name="grefs"``). ``negatives`` > 0 adds that share of
    no-target samples (:func:`~btdnet.data.negatives.add_negatives`; needs the categories of
    ``instances.json``, so not RefSegRS). Raises
    :class:`~btdnet.data.errors.DatasetError` (naming the file) when the index is unusable.
    """
    if name not in REFERRING_LOADERS:
        raise ValueError(
            f"unknown referring data set {name!r}; known: {', '.join(sorted(REFERRING_LOADERS))}"
        )
    records, stats = REFERRING_LOADERS[name](root, split)
    if negatives:
        if name not in INSTANCES_FILES:
            raise ValueError(
                f"negatives need the objects' categories of an instances.json; {name!r} has none"
            )
        categories = image_categories_from_instances(Path(root) / INSTANCES_FILES[name])
        records = add_negatives(records, categories, share=negatives, seed=negatives_seed)
    return ReferringDataset(
        records, tokenizer, image_size=image_size, max_tokens=max_tokens, stats=stats
    )
