"""Evaluation runner for referring segmentation: model -> per-sample statistics -> metrics.

Used by training-time evaluation and by ``scripts/benchmark.py``. It runs on every process
of an ``accelerate`` job; per-sample statistics are gathered with
``accelerator.gather_for_metrics`` so the padding duplicates of the last batch are dropped and
every sample counts exactly once, and every process returns the same dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from btdnet.engine.modes import eval_mode
from btdnet.evaluation.prediction_files import (
    check_protocol,
    dataset_split,
    is_generalized_set,
    prediction_filename,
    write_prediction,
)
from btdnet.metrics.boundary import boundary_counts
from btdnet.metrics.generalized import GeneralizedMetrics
from btdnet.metrics.referring import size_bucket
from btdnet.presence import (
    DEFAULT_PRESENCE_THRESHOLD,
    output_present,
    resolve_presence_threshold,
)

STAT_COLUMNS = 10
"""Columns of a per-sample statistics row (:func:`batch_stats`)."""
_REQUIRED_KEYS = ("pixel_values", "input_ids", "attention_mask", "mask", "index", "orig_size")


def find_referring_dataset(dataloader: Any, dataset: Any = None) -> Any:
    """Return the dataset that owns the items' ``index`` positions, or ``None``.

    An explicit ``dataset`` wins. Otherwise ``dataloader.dataset`` is unwrapped through
    ``.dataset`` attributes (e.g. ``torch.utils.data.Subset``) until one has ``records`` and
    ``original_mask`` (a ``ReferringDataset`` or a wrapper that delegates them).
    """
    if dataset is not None:
        return dataset
    candidate = getattr(dataloader, "dataset", None)
    seen: set[int] = set()  # a wrapper whose .dataset leads back to itself ends the search
    while candidate is not None and id(candidate) not in seen:
        if hasattr(candidate, "records") and hasattr(candidate, "original_mask"):
            return candidate
        seen.add(id(candidate))
        candidate = getattr(candidate, "dataset", None)
    return None


def split_loader(
    model: Any,
    dataset_name: str,
    root: str | Path,
    split: str,
    batch_size: int,
    accelerator: Any,
    *,
    max_tokens: int | None = None,
    num_workers: int = 0,
) -> tuple[Any, Any]:
    """``(dataset, prepared loader)`` of one split, read at ``model``'s own image size with its
    tokenizer, in order (no shuffling); expressions are cut at ``max_tokens`` (default: the
    model's own length)."""
    from torch.utils.data import DataLoader

    from btdnet.data import build_referring_dataset

    dataset = build_referring_dataset(
        dataset_name,
        root,
        split,
        model.tokenizer,
        image_size=model.config.image_size,
        max_tokens=max_tokens or model.config.max_tokens,
    )
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    return dataset, accelerator.prepare(loader)


def _upsample(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize (N, 1, h, w) logits to ``size`` unless they already have it."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def _original_mask(dataset: Any, index: int, device: torch.device) -> torch.Tensor:
    """The dataset's bool ground truth of sample ``index`` at the original size, on ``device``."""
    mask = np.asarray(dataset.original_mask(index), dtype=bool)
    return torch.from_numpy(mask).to(device)


def answer_logits(
    output: Any, presence_threshold: float = DEFAULT_PRESENCE_THRESHOLD
) -> torch.Tensor:
    """(B, 1, H, W) float logits whose ``> 0`` is the answer mask.

    Samples the presence rule answers "no target" (:func:`btdnet.presence.output_present`)
    get a uniformly negative map, so their mask is empty at any resolution.
    """
    logits = output.target_logits.float()  # (B, 1, H, W)
    present = output_present(output, presence_threshold)  # (B,)
    return torch.where(present[:, None, None, None], logits, torch.full_like(logits, -1e4))


def batch_stats(
    logits: torch.Tensor, batch: dict[str, Any], protocol: str, dataset: Any
) -> torch.Tensor:
    """Per-sample ``(index, I, U, gt area at original size, predicted area, no_target)`` and the
    four boundary counts (``btdnet.metrics.boundary.boundary_counts``, at the scored resolution)
    of one batch as (B, STAT_COLUMNS) int64; ``no_target`` comes from the items' ``present``
    (else 0).

    Under ``lavt`` without a dataset, the original-size area is estimated by scaling the
    resized mask's area by the ratio of the original to the resized pixel count.
    """
    indices = torch.as_tensor(batch["index"]).long()  # (B,)
    if "present" in batch:
        no_target = (torch.as_tensor(batch["present"]) == 0).long().tolist()  # B
    else:  # classic items: every sample has a target (an empty mask scores 0, as in LAVT)
        no_target = [0] * len(indices)
    orig_sizes = torch.as_tensor(batch["orig_size"]).long().tolist()  # B x [H, W]
    rows = []
    if protocol == "lavt":
        gt = batch["mask"].to(logits.device) != 0  # (B, S, S)
        pred = _upsample(logits, tuple(gt.shape[-2:]))[:, 0] > 0  # (B, S, S)
        inter = (pred & gt).flatten(1).sum(1)  # (B,)
        union = (pred | gt).flatten(1).sum(1)  # (B,)
        pred_area = pred.flatten(1).sum(1)  # (B,)
        edges = boundary_counts(pred, gt).tolist()  # B x [4]
        for b, index in enumerate(indices.tolist()):
            if dataset is not None:
                area = int(np.asarray(dataset.original_mask(index), dtype=bool).sum())
            else:
                height, width = orig_sizes[b]
                scale = height * width / float(gt.shape[-2] * gt.shape[-1])
                area = round(int(gt[b].sum()) * scale)
            row = (index, int(inter[b]), int(union[b]), area, int(pred_area[b]), no_target[b])
            rows.append((*row, *edges[b]))
    else:
        for b, index in enumerate(indices.tolist()):
            gt_b = _original_mask(dataset, index, logits.device)  # (H, W)
            if list(gt_b.shape) != orig_sizes[b]:
                raise ValueError(
                    f"sample {index}: original_mask has shape {tuple(gt_b.shape)} but the "
                    f"item's orig_size is {tuple(orig_sizes[b])}"
                )
            pred_b = _upsample(logits[b : b + 1], tuple(gt_b.shape))[0, 0] > 0  # (H, W)
            inter_b, union_b = int((pred_b & gt_b).sum()), int((pred_b | gt_b).sum())
            edges = tuple(boundary_counts(pred_b, gt_b)[0].tolist())
            row = (index, inter_b, union_b, int(gt_b.sum()), int(pred_b.sum()), no_target[b])
            rows.append((*row, *edges))
    return torch.tensor(rows, dtype=torch.int64, device=logits.device).reshape(-1, STAT_COLUMNS)


def _save_owned_predictions(
    logits: torch.Tensor,
    batch: dict[str, Any],
    owned: list[int],
    save_dir: Path,
) -> None:
    """Write 0/255 PNGs at original size for the local batch positions in ``owned``."""
    orig_sizes = torch.as_tensor(batch["orig_size"]).long().tolist()  # B x [H, W]
    for b in owned:
        height, width = orig_sizes[b]
        pred = _upsample(logits[b : b + 1], (height, width))[0, 0] > 0  # (H, W)
        write_prediction(pred, save_dir / prediction_filename(str(batch["sample_id"][b])))


def forward_batch(model: nn.Module, batch: dict[str, Any], accelerator: Any) -> Any:
    """One evaluation forward pass (autocast as the accelerator says)."""
    missing = [key for key in _REQUIRED_KEYS if key not in batch]
    if missing:
        raise KeyError(f"evaluate_referring: batch lacks keys {missing}")
    with accelerator.autocast():
        return model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])


def forward_item(model: nn.Module, item: dict[str, Any]) -> Any:
    """The model's output for one dataset item, its tensors moved to the model's device."""
    device = next(model.parameters()).device
    keys = ("pixel_values", "input_ids", "attention_mask")
    return model(*(item[key][None].to(device) for key in keys))


def evaluate_referring(
    model: nn.Module,
    dataloader: Any,
    accelerator: Any,
    *,
    protocol: str = "lavt",
    dataset: Any = None,
    save_dir: str | Path | None = None,
    show_progress: bool = True,
    presence_threshold: float | None = None,
    keep_samples: bool = False,
    also_at_thresholds: Sequence[float] = (),
) -> dict[str, Any]:
    """Evaluate a referring model on a (prepared) dataloader under one protocol.

    Args:
        model: ``model(pixel_values, input_ids, attention_mask)`` gives ``target_logits``
            (B, 1, H, W) (mask = logit > 0) and, with a presence head, ``presence_logits``.
        dataloader: prepared by ``accelerator.prepare`` (``even_batches=True``).
        accelerator: the ``accelerate.Accelerator``.
        protocol: ``"lavt"``: at the input resolution against the batch's ``mask``;
            ``"original"``: logits up-sampled (bilinear) to ``orig_size``, against
            ``dataset.original_mask(index)``.
        dataset: owner of the items' ``index`` (records: categories, sample ids; masks: size
            buckets). Default: ``dataloader.dataset`` unwrapped; needed by ``"original"``.
        save_dir: each process writes its samples' 0/255 PNGs (original size) there.
        show_progress: progress bar on the local main process.
        presence_threshold: "no target" (empty mask) below it; None: the model's config.
        keep_samples: also return ``sample_ious``, ``{sample_id: IoU in [0, 1]}`` of every
            sample (generalized IoU: a no-target sample answered empty scores 1).
        also_at_thresholds: further presence thresholds scored from the same forward passes;
            their results (without ``sample_ious``) are under ``result["at_thresholds"][t]``.

    Returns:
        :func:`finish_metrics`'s dict, identical on every process. Without a dataset the size
        buckets use an estimated original area and ``per_category`` is empty.
    """
    dataset, folder = _checked_inputs(dataloader, dataset, protocol, save_dir)
    records = getattr(dataset, "records", None)
    inner = getattr(model, "module", model)  # DDP wraps it
    own_threshold = resolve_presence_threshold(presence_threshold, inner)
    # One GeneralizedMetrics per distinct threshold; the first is the result's own.
    scored = {float(t): GeneralizedMetrics() for t in (own_threshold, *also_at_thresholds)}
    progress = tqdm(
        dataloader,
        desc=f"evaluate ({protocol})",
        disable=not (show_progress and accelerator.is_local_main_process),
    )
    with eval_mode(model), torch.no_grad():
        for batch in progress:
            output = forward_batch(model, batch, accelerator)
            for threshold, metrics in scored.items():
                logits = answer_logits(output, threshold)  # (B, 1, H, W)
                stats = batch_stats(logits, batch, protocol, dataset)  # (B, STAT_COLUMNS)
                gathered = accelerator.gather_for_metrics(
                    stats
                ).cpu()  # (N, STAT_COLUMNS), N <= P * B
                if folder is not None and threshold == own_threshold:
                    # Gathered rows are in rank order; the truncated tail holds the duplicates.
                    offset = accelerator.process_index * stats.shape[0]
                    owned = [b for b in range(stats.shape[0]) if offset + b < gathered.shape[0]]
                    _save_owned_predictions(logits, batch, owned, folder)
                _add_rows(metrics, gathered.tolist(), records)
    if folder is not None:
        accelerator.wait_for_everyone()
    generalized = getattr(inner, "presence_head", None) is not None
    own = scored[own_threshold]
    result = finish_metrics(own, protocol, dataset, generalized=generalized)
    if keep_samples:
        result["sample_ious"] = dict(own.sample_ious())
    if also_at_thresholds:
        result["at_thresholds"] = {
            float(t): finish_metrics(scored[float(t)], protocol, dataset, generalized=generalized)
            for t in also_at_thresholds
        }
    return result


def _checked_inputs(
    dataloader: Any, dataset: Any, protocol: str, save_dir: str | Path | None
) -> tuple[Any, Path | None]:
    """The samples' dataset (found under the loader's wrappers) and the created ``save_dir``;
    raises on an unknown protocol, or ``"original"`` without a dataset."""
    check_protocol(protocol)
    dataset = find_referring_dataset(dataloader, dataset)
    if protocol == "original" and dataset is None:
        raise ValueError(
            "evaluate_referring(protocol='original') needs the dataset (original_mask); pass "
            "dataset= or use a dataloader over a ReferringDataset"
        )
    folder = Path(save_dir) if save_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    return dataset, folder


def _add_rows(metrics: GeneralizedMetrics, rows: list[list[int]], records: Any) -> None:
    """Add gathered ``(index, I, U, gt area, pred area, no_target, 4 boundary counts)`` rows."""
    for index, inter, union, area, pred_area, no_target, *edges in rows:
        record = records[index] if records is not None else None
        metrics.update_stats(
            inter,
            union,
            pred_area,
            no_target=bool(no_target),
            category=getattr(record, "category", None),
            size_bucket=size_bucket(area),
            sample_id=getattr(record, "sample_id", None),
            boundary=edges,
        )


def finish_metrics(
    metrics: GeneralizedMetrics, protocol: str, dataset: Any, *, generalized: bool = False
) -> dict[str, Any]:
    """The result dict: the LAVT metrics over the targeted samples, plus the generalized
    metrics (gIoU, cIoU, N_acc, T_acc, sample counts) when the set holds a no-target sample, is
    a generalized set (gRefCOCO format, :func:`is_generalized_set`) or ``generalized`` is set (a
    model with a presence head), plus ``protocol`` and ``split``.

    A set without no-target samples scored without a presence head gives exactly the keys and
    numbers of the classic evaluation.
    """
    result = metrics.report(generalized=generalized or is_generalized_set(dataset))
    result["protocol"] = protocol
    split = dataset_split(dataset) if dataset is not None else None
    if split is not None:
        result["split"] = split
    return result
