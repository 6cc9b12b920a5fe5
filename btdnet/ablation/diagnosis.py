"""Diagnosis of a trained BTDNet: do its modules do what their names say?

- **BSC's correlation maps**: each stage's sentence-to-pixel map is compared with the ground
  truth at the map's own resolution. The map is read *area-matched*: its ``k`` highest pixels,
  ``k`` = the target's area at that resolution, form the map's mask (threshold-free, so the
  spatial (KL) reading, whose map is a distribution and not a probability per pixel, is read
  the same way as the per-pixel BCE reading). ``map_iou`` is that mask's IoU with the truth:
  1 when the map ranks the target first, about ``area share`` for a map that ignores it.
- **The background stream**: IoU of ``background logit > 0`` with ``1 - ground truth``, beside
  the target stream's IoU with the truth (both at the input resolution).
- **Gradient norms** per module (image encoder, text encoder, each BSC block, decoder, D-MOLS,
  presence head) on training batches: which parts the loss moves.

:func:`diagnose` collects all three over a loader; :func:`draw_examples` draws a few samples
(image, truth, prediction, every stage's map, the background stream) as one PNG.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from btdnet.ablation.table import mean_and_spread
from btdnet.engine.modes import eval_mode
from btdnet.safe_write import atomic_output

MODULE_GROUPS = ("image_encoder", "text_encoder", "fusions", "decoder", "dmols", "presence_head")
"""Top-level parts of a BTDNet whose gradient norms are reported (BSC blocks one by one)."""


def map_iou(correlation: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Area-matched IoU of each correlation map with the ground truth.

    Args:
        correlation: (B, 1, h, w) map logits.
        truth: (B, S, S) 0/1 masks at the input resolution.

    Returns:
        (B,) float IoU; NaN where the target covers no cell of the map.
    """
    b, _, h, w = correlation.shape
    cells = F.adaptive_avg_pool2d(truth[:, None].float(), (h, w))[:, 0] >= 0.5  # (B, h, w)
    scores = correlation[:, 0].float().flatten(1)  # (B, hw)
    ious = torch.full((b,), float("nan"))
    for i in range(b):
        k = int(cells[i].sum())
        if k == 0:
            continue
        chosen = torch.zeros(h * w, dtype=torch.bool)
        chosen[scores[i].topk(k).indices] = True
        target = cells[i].flatten()
        ious[i] = (chosen & target).sum() / (chosen | target).sum()
    return ious


def chance_iou(truth: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """What :func:`map_iou` expects of a map that ignores the target, per sample.

    A map that ignores the target picks its ``k`` cells (``k`` target cells of ``n = h w``) at
    random: the overlap ``X`` is hypergeometric, and the expected IoU is the exact
    ``sum_x P(X = x) x / (2k - x)`` (about ``p / (2 - p)`` for a target share ``p``).

    Args:
        truth: (B, S, S) 0/1 masks at the input resolution.

    Returns:
        (B,) float; NaN where the target covers no cell of the map.
    """
    cells = F.adaptive_avg_pool2d(truth[:, None].float(), (h, w))[:, 0] >= 0.5  # (B, h, w)
    n = h * w
    out = torch.full((cells.shape[0],), float("nan"), dtype=torch.float64)
    for i, k in enumerate(cells.flatten(1).sum(1).tolist()):
        if k == 0:
            continue
        x = torch.arange(max(0, 2 * k - n), k + 1, dtype=torch.float64)  # possible overlaps
        log_p = _log_comb(k, x) + _log_comb(n - k, k - x) - _log_comb(n, torch.tensor(k))
        out[i] = (log_p.exp() * x / (2 * k - x)).sum()
    return out.float()


def _log_comb(n: int, r: torch.Tensor) -> torch.Tensor:
    """log(n choose r), elementwise over ``r`` (float64)."""
    r = r.to(torch.float64)
    n_ = torch.tensor(float(n), dtype=torch.float64)
    return torch.lgamma(n_ + 1) - torch.lgamma(r + 1) - torch.lgamma(n_ - r + 1)


def mask_iou(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B, ...) bool masks -> (B,) IoU (1 where both are empty)."""
    inter = (pred & truth).flatten(1).sum(1).float()
    union = (pred | truth).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def _group(name: str) -> str | None:
    """The reported group of a parameter name (``fusions.2`` for the third BSC block)."""
    head, _, rest = name.partition(".")
    if head == "fusions":
        return f"fusions.{rest.partition('.')[0]}"
    return head if head in MODULE_GROUPS else None


def gradient_norms(model: nn.Module, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Mean over ``batches`` of each module group's gradient L2 norm (training mode).

    Each batch is a referring batch (``pixel_values``, ``input_ids``, ``attention_mask``,
    ``mask``); the model's own loss is back-propagated and the gradients cleared afterwards.
    """
    sums: dict[str, list[float]] = defaultdict(list)
    was_training = model.training
    model.train()
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            out = model(
                batch["pixel_values"],
                batch["input_ids"],
                batch["attention_mask"],
                targets=batch["mask"].float(),
            )
            out.loss.backward()
            squares: dict[str, float] = defaultdict(float)
            for name, p in model.named_parameters():
                group = _group(name)
                if group is not None and p.grad is not None:
                    squares[group] += float(p.grad.detach().float().square().sum())
            for group, value in squares.items():
                sums[group].append(value**0.5)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return {group: float(np.mean(values)) for group, values in sorted(sums.items())}


def _nan_mean(values: list[torch.Tensor]) -> float | None:
    joined = torch.cat(values) if values else torch.empty(0)
    kept = joined[~torch.isnan(joined)]
    return float(kept.mean()) if kept.numel() else None


def diagnose(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    *,
    max_batches: int | None = None,
    gradient_batches: int = 2,
    keep_examples: int = 4,
) -> dict[str, Any]:
    """Map IoU per stage, stream IoUs and gradient norms of ``model`` over ``loader``.

    Returns ``{"samples", "map_iou": [per stage], "map_chance": [per stage, what a map that
    ignores the target scores], "map_samples": [per stage, samples whose target covers a cell],
    "target_iou", "background_iou" (its IoU with 1 - truth), "background_complement_iou" (the
    IoU of what it calls not-background with the truth),
    "gradient_norms": {group: norm}, "examples": [...]}`` (examples: tensors for
    :func:`draw_examples`, the first ``keep_examples`` samples).
    """
    per_stage: dict[int, list[torch.Tensor]] = defaultdict(list)
    chance: dict[int, list[torch.Tensor]] = defaultdict(list)
    target_ious: list[torch.Tensor] = []
    background_ious: list[torch.Tensor] = []
    complement_ious: list[torch.Tensor] = []
    examples: list[dict[str, Any]] = []
    kept_batches: list[dict[str, Any]] = []
    with eval_mode(model), torch.no_grad():
        for index, batch in enumerate(loader):
            if max_batches is not None and index >= max_batches:
                break
            if len(kept_batches) < gradient_batches:
                kept_batches.append(batch)
            truth = batch["mask"] != 0  # (B, S, S)
            out = model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
            for stage, correlation in enumerate(out.correlation_maps):
                per_stage[stage].append(map_iou(correlation.cpu(), truth.cpu()))
                h, w = correlation.shape[-2:]
                chance[stage].append(chance_iou(truth.cpu(), h, w))
            target_ious.append(mask_iou(out.target_logits[:, 0] > 0, truth).cpu())
            background_ious.append(mask_iou(out.background_logits[:, 0] > 0, ~truth).cpu())
            # what the background stream alone says the target is: its complement
            complement_ious.append(mask_iou(out.background_logits[:, 0] <= 0, truth).cpu())
            for b in range(min(keep_examples - len(examples), truth.shape[0])):
                examples.append(
                    {
                        "text": batch.get("text", [""] * truth.shape[0])[b],
                        "pixel_values": batch["pixel_values"][b].cpu(),
                        "truth": truth[b].cpu(),
                        "target": out.target_logits[b, 0].float().cpu(),
                        "background": out.background_logits[b, 0].float().cpu(),
                        "maps": [m[b, 0].float().cpu() for m in out.correlation_maps],
                    }
                )
    return {
        "samples": sum(len(t) for t in target_ious),
        "map_iou": [_nan_mean(per_stage[s]) for s in sorted(per_stage)],
        "map_chance": [_nan_mean(chance[s]) for s in sorted(chance)],
        "map_samples": [
            int((~torch.isnan(torch.cat(per_stage[s]))).sum()) for s in sorted(per_stage)
        ],
        "target_iou": _nan_mean(target_ious),
        "background_iou": _nan_mean(background_ious),
        "background_complement_iou": _nan_mean(complement_ious),
        "gradient_norms": gradient_norms(model, kept_batches),
        "examples": examples,
    }


def _image(pixel_values: torch.Tensor) -> np.ndarray:
    """(3, S, S) ImageNet-normalised tensor -> (S, S, 3) floats in [0, 1] for display."""
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return (pixel_values * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def draw_examples(examples: list[dict[str, Any]], path: Path) -> Path:
    """One row per example: image, truth, prediction, each stage's map, background stream."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = max((len(e["maps"]) for e in examples), default=0)
    columns = 4 + stages
    figure, axes = plt.subplots(
        len(examples), columns, figsize=(2.2 * columns, 2.4 * len(examples)), squeeze=False
    )
    for row, example in zip(axes, examples):
        panels = [
            (_image(example["pixel_values"]), "image", None),
            (example["truth"].numpy(), "truth", "gray"),
            ((example["target"] > 0).numpy(), "prediction", "gray"),
            *[(m.numpy(), f"BSC map {s + 1}", "magma") for s, m in enumerate(example["maps"])],
            (torch.sigmoid(example["background"]).numpy(), "background P", "viridis"),
        ]
        for axis, (data, title, cmap) in zip(row, panels):
            axis.imshow(data, cmap=cmap)
            axis.set_title(title, fontsize=8)
            axis.axis("off")
        row[0].set_title(f"image: {example['text'][:40]}", fontsize=7)
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=80, format="png")
    plt.close(figure)
    return Path(path)


def category_gaps(
    results: Iterable[dict[str, Any]], variant: str, reference: str, key: str = "per_category"
) -> dict[str, dict[str, float]]:
    """Where two variants differ: each category's (or size's) mean score over the seeds.

    ``results`` are the ablation runs' ``result.json`` dicts (``key``: ``per_category``,
    ``per_size`` or another ``{name: score}`` record). Returns ``{name: {variant, reference,
    gap, spread, seeds}}`` for the names both have: the means, the gap as ``variant -
    reference``, each side's sample standard deviation over its seeds (None for one seed) and
    its number of seeds; largest gap first by magnitude.
    """
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        if result.get("variant") in (variant, reference):
            for name, score in result.get(key, {}).items():
                values[name][result["variant"]].append(float(score))
    gaps = {}
    for name, by_variant in values.items():
        if by_variant.get(variant) and by_variant.get(reference):
            ours, theirs = (mean_and_spread(by_variant[v]) for v in (variant, reference))
            gaps[name] = {
                variant: ours["mean"],
                reference: theirs["mean"],
                "gap": ours["mean"] - theirs["mean"],
                "spread": {variant: ours["std"], reference: theirs["std"]},
                "seeds": {variant: ours["n"], reference: theirs["n"]},
            }
    return dict(sorted(gaps.items(), key=lambda item: -abs(item[1]["gap"])))


__all__ = [
    "category_gaps",
    "chance_iou",
    "diagnose",
    "draw_examples",
    "gradient_norms",
    "map_iou",
    "mask_iou",
]
