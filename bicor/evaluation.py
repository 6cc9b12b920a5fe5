"""Closed-set evaluation: sliding-window logits -> one confusion matrix -> GeoSeg metrics.

The one function used by training-time evaluation (``bicor.task.SegTask``) and by
``scripts/benchmark.py --task seg``. Each image's (K, K) confusion counts are gathered with
``accelerator.gather_for_metrics``, so under several processes every image is counted exactly
once (the duplicates accelerate pads the last batch with are dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from bicor.inference import sliding_window_predict
from bicor.tta import TestTimeAugment
from btdnet.engine.modes import eval_mode
from btdnet.metrics.confusion import ConfusionMatrix, confusion_counts


def _unwrap(model: nn.Module, accelerator: Any | None) -> nn.Module:
    return accelerator.unwrap_model(model) if accelerator is not None else model


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    pixel_values: Tensor,
    *,
    window: int | None = None,
    stride: int | None = None,
    flip_tta: bool = False,
    tta: TestTimeAugment | None = None,
    window_batch: int = 4,
    device: torch.device | str | None = None,
    border: str = "clamp",
) -> Tensor:
    """(B, 3, H, W) -> (B, K, H, W) logits of a BiCoR model by sliding windows.

    ``window`` defaults to the model's ``config.image_size`` and ``stride`` to 2/3 of the window
    (one third overlap); an image no larger than the window is one forward pass. ``border``:
    "clamp" or "pad" (GeoSeg's test patches; :func:`bicor.inference.sliding_window_predict`).
    """
    config = model.config
    window = int(config.image_size if window is None else window)  # 0 is refused, not a default
    stride = int(max(1, (2 * window) // 3) if stride is None else stride)

    def model_fn(batch: Tensor) -> Tensor:
        return model(batch).logits

    return sliding_window_predict(
        model_fn,
        pixel_values,
        num_classes=config.num_classes,
        window=window,
        stride=stride,
        flip_tta=flip_tta,
        tta=tta,
        window_batch=window_batch,
        device=device,
        border=border,
    )


@torch.no_grad()
def evaluate_closed_set(
    model: nn.Module,
    dataloader: Any,
    accelerator: Any | None = None,
    *,
    class_names: Sequence[str] | None = None,
    eval_classes: Sequence[int | str] | None = None,
    window: int | None = None,
    stride: int | None = None,
    flip_tta: bool = False,
    tta: TestTimeAugment | None = None,
    window_batch: int = 4,
    border: str = "clamp",
    show_progress: bool = False,
    on_prediction: Callable[[str, Tensor], None] | None = None,
) -> dict[str, Any]:
    """Score ``model`` on ``dataloader`` (items with ``pixel_values`` and ``mask``).

    Args:
        model: a BiCoRSeg (possibly wrapped by accelerate).
        dataloader: batches ``{"pixel_values": (B, 3, H, W), "mask": (B, H, W)}``.
        accelerator: an ``accelerate.Accelerator`` (None: single process, model's device).
        class_names: K names (default: the model's).
        eval_classes: classes entering mIoU / mF1 (default: all), e.g. a protocol's.
        window, stride, flip_tta, tta, window_batch, border: sliding-window settings (see
            :func:`predict_logits`).
        on_prediction: called on each process with ``(sample_id, (H, W) class ids)`` for every
            image of its batches (needs ``sample_id`` in the batches), e.g. to save them.

    Returns:
        ``ConfusionMatrix.compute`` output (mIoU, mF1, OA as percentages, per_class, pixels,
        eval_classes) plus ``images``: the number of images scored.
    """
    net = _unwrap(model, accelerator)
    num_classes = net.config.num_classes
    ignore_index = net.config.ignore_index
    device = accelerator.device if accelerator is not None else next(net.parameters()).device
    matrix = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    images = 0
    main = accelerator is None or accelerator.is_main_process
    with eval_mode(net):
        for batch in tqdm(dataloader, desc="evaluate", disable=not (show_progress and main)):
            pixel_values, masks = batch["pixel_values"], batch["mask"]
            logits = predict_logits(
                net,
                pixel_values,
                window=window,
                stride=stride,
                flip_tta=flip_tta,
                tta=tta,
                window_batch=window_batch,
                device=device,
                border=border,
            )
            preds = logits.argmax(dim=1)  # (B, H, W)
            if on_prediction is not None:
                for sample_id, pred in zip(batch["sample_id"], preds):
                    on_prediction(str(sample_id), pred)
            per_image = torch.stack(
                [
                    confusion_counts(p, m, num_classes=num_classes, ignore_index=ignore_index)
                    for p, m in zip(preds, masks.to(preds.device))
                ]
            )  # (B, K, K)
            if accelerator is not None:
                per_image = accelerator.gather_for_metrics(per_image.to(device))
            matrix.add_matrix(per_image.sum(dim=0))
            images += int(per_image.shape[0])
    names = list(class_names) if class_names is not None else net.class_names
    result = matrix.compute(names, eval_classes)
    result["images"] = images
    return result
