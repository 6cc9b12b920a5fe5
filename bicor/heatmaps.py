"""HBIS heatmaps as pictures: one per class per layer, for one image.

Each HBIS layer returns (B, K, H/4, W/4) heatmap logits. A picture shows one class of one layer:
the sigmoid (the weight the layer pools the class with) or the softmax over classes (the weight
it mixes the class's FiLM with), up-sampled to the image, in a blue-to-red colour ramp, blended
over the image.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from btdnet.colormap import colorize
from btdnet.engine.modes import eval_mode
from btdnet.safe_write import atomic_output, check_output_folder

MODES = ("sigmoid", "softmax")


def heatmap_probabilities(heatmaps: list[Tensor], mode: str = "sigmoid") -> list[Tensor]:
    """Per layer (B, K, h, w) logits -> probabilities in [0, 1] (sigmoid per class, or softmax
    over classes)."""
    if mode not in MODES:
        raise ValueError(f"unknown heatmap mode {mode!r}; choose one of {MODES}")
    if mode == "sigmoid":
        return [h.float().sigmoid() for h in heatmaps]
    return [h.float().softmax(dim=1) for h in heatmaps]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "class"


def save_heatmaps(
    heatmaps: list[Tensor],
    out_dir: str | Path,
    *,
    class_names: list[str],
    image: np.ndarray | None = None,
    mode: str = "sigmoid",
    alpha: float = 0.6,
) -> list[Path]:
    """Write ``layer{l}_{k:02d}_{class}.png`` for every layer l (1-based) and class k.

    Args:
        heatmaps: per layer (1, K, h, w) heatmap logits of one image.
        out_dir: folder (created).
        class_names: K names.
        image: optional (H, W, 3) uint8 RGB; the heatmaps are up-sampled to it and blended with
            weight ``alpha``. Without it the pictures are the heatmaps at their own size.
        mode: "sigmoid" or "softmax" (see :func:`heatmap_probabilities`).

    Returns:
        The written paths, layer-major.
    """
    if not heatmaps:
        raise ValueError("no heatmaps: the model was built without HBIS (use_hbis=False)")
    out_dir = check_output_folder(out_dir)  # a link is refused: nothing written elsewhere
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for layer, probs in enumerate(heatmap_probabilities(heatmaps, mode), start=1):
        if probs.dim() != 4 or probs.shape[0] != 1:
            raise ValueError(f"expected (1, K, h, w) heatmaps, got {tuple(probs.shape)}")
        if probs.shape[1] != len(class_names):
            raise ValueError(f"{len(class_names)} class names for {probs.shape[1]} heatmap classes")
        if image is not None:
            probs = F.interpolate(probs, size=image.shape[:2], mode="bilinear", align_corners=False)
        for k, name in enumerate(class_names):
            picture = colorize(probs[0, k].cpu().numpy()).astype(np.float32)
            if image is not None:
                picture = alpha * picture + (1 - alpha) * image.astype(np.float32)
            path = out_dir / f"layer{layer}_{k:02d}_{_safe(name)}.png"
            with atomic_output(path) as tmp:
                Image.fromarray(picture.round().astype(np.uint8), mode="RGB").save(
                    tmp, format="PNG"
                )
            written.append(path)
    return written


@torch.no_grad()
def compute_heatmaps(model: torch.nn.Module, pixel_values: Tensor) -> list[Tensor]:
    """Run ``model`` (a BiCoRSeg) in eval mode on (1, 3, H, W) and return its heatmap logits."""
    with eval_mode(model):
        return model(pixel_values).heatmaps
