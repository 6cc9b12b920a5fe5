"""Sliding-window inference for large tiles (overlapping windows, averaged logits, TTA).

A 6000 x 6000 Potsdam tile never goes to the device whole: windows are cut on the image's own
device (usually the CPU), sent to the model ``window_batch`` at a time, and their logits summed
into a (B, K, H, W) buffer on the image's device, then divided by the per-pixel window count.

Two ways to meet the border (``border``): ``"clamp"`` moves the last window of a row or column
back inside the image (it overlaps its neighbour; the logits are averaged); ``"pad"`` is
GeoSeg's test patches (the authors' setting): the image is padded at the bottom/right with
black pixels until the windows tile it exactly, and the padding is cropped from the logits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bicor.tta import TestTimeAugment
from btdnet.normalization import IMAGENET_MEAN, IMAGENET_STD
from btdnet.tiling import coverage, padded_length, window_starts

ModelFn = Callable[[Tensor], Tensor]
BORDERS = ("clamp", "pad")


def pad_black(image: Tensor, height: int, width: int) -> Tensor:
    """(B, 3, H, W) normalised -> (B, 3, height, width): black pixels (RGB 0, ImageNet
    normalisation) added at the bottom/right, as GeoSeg pads its test tiles."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device)
    black = (-mean / std).view(1, 3, 1, 1)
    out = black.expand(image.shape[0], 3, height, width).clone()
    out[:, :, : image.shape[-2], : image.shape[-1]] = image
    return out


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))
    if pair[0] < 1 or pair[1] < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return pair


@torch.no_grad()
def sliding_window_predict(
    model_fn: ModelFn,
    image: Tensor,
    *,
    num_classes: int,
    window: int | tuple[int, int],
    stride: int | tuple[int, int],
    flip_tta: bool = False,
    tta: TestTimeAugment | None = None,
    window_batch: int = 4,
    device: torch.device | str | None = None,
    border: str = "clamp",
) -> Tensor:
    """Logits of a whole image from overlapping windows.

    Args:
        model_fn: (n, 3, wh, ww) on ``device`` -> (n, K, wh, ww) logits.
        image: (B, 3, H, W) normalised image, any H, W.
        num_classes: K.
        window: window size (int or (h, w)); an image smaller than the window is zero-padded at
            the bottom/right (zero = the mean colour after normalisation) and the padding cropped
            from the logits.
        stride: step between windows (int or (h, w)); windows at the border are clamped inside.
        flip_tta: shorthand for ``tta=TestTimeAugment(hflip=True, vflip=True)`` (4 views).
        tta: the test-time views averaged on every window (see :mod:`bicor.tta`).
        window_batch: windows per model call.
        device: where the model runs (default: the image's device).
        border: "clamp" (windows moved inside the image) or "pad" (GeoSeg's black padding at
            the bottom/right, every window at a multiple of the stride; see the module notes).

    Returns:
        (B, K, H, W) float32 logits on the image's device: overlapping windows averaged.
    """
    if image.dim() != 4:
        raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
    if window_batch < 1:
        raise ValueError(f"window_batch must be >= 1, got {window_batch}")
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    if tta is None:
        tta = TestTimeAugment(hflip=flip_tta, vflip=flip_tta)
    win_h, win_w = _pair(window, "window")
    stride_h, stride_w = _pair(stride, "stride")
    batch, _, height, width = image.shape
    device = torch.device(device) if device is not None else image.device
    if border == "pad":
        full = (padded_length(height, win_h, stride_h), padded_length(width, win_w, stride_w))
        padded = pad_black(image, *full) if full != (height, width) else image
    else:
        pad_h, pad_w = max(0, win_h - height), max(0, win_w - width)
        padded = F.pad(image, (0, pad_w, 0, pad_h)) if pad_h or pad_w else image
    full_h, full_w = padded.shape[-2:]
    logits = torch.zeros(batch, num_classes, full_h, full_w, device=image.device)
    starts_y = window_starts(full_h, win_h, stride_h)
    starts_x = window_starts(full_w, win_w, stride_w)
    boxes = [(y, x) for y in starts_y for x in starts_x]
    # every (image, window) pair is one crop; crops go to the model window_batch at a time
    crops = [(b, y, x) for b in range(batch) for (y, x) in boxes]
    for first in range(0, len(crops), window_batch):
        chunk = crops[first : first + window_batch]
        windows = torch.stack(
            [padded[b, :, y : y + win_h, x : x + win_w] for b, y, x in chunk]
        )  # (n, 3, win_h, win_w)
        out = tta(model_fn, windows.to(device))
        if out.shape != (len(chunk), num_classes, win_h, win_w):
            raise ValueError(
                f"model_fn returned {tuple(out.shape)}, expected "
                f"{(len(chunk), num_classes, win_h, win_w)}"
            )
        out = out.float().to(image.device)
        for i, (b, y, x) in enumerate(chunk):
            logits[b, :, y : y + win_h, x : x + win_w] += out[i]
    # equal weights: every pixel's sum divided by the windows covering it (btdnet.tiling)
    counts = np.outer(coverage(starts_y, win_h, full_h), coverage(starts_x, win_w, full_w))
    logits = logits / torch.from_numpy(counts).to(image.device)[None, None]
    return logits[:, :, :height, :width]
