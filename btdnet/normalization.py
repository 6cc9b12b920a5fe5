"""The ImageNet normalisation of every image the toolkit feeds a model, and its inverse.

Shared core (docs/architecture.md): referring samples, the predictor, scene tiles and the
closed-set loaders normalise with :func:`normalize_array`; pictures of a normalised tensor
(overlays, galleries) come back with :func:`denormalize`.
"""

from __future__ import annotations

import numpy as np
import torch

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def normalize_array(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> float32 (3, H, W), ImageNet-normalised."""
    array = np.asarray(image, dtype=np.float32) / 255.0  # (H, W, 3)
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    array = (array - mean) / std
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))  # (3, H, W)


def denormalize(pixel_values: torch.Tensor) -> np.ndarray:
    """float (3, S, S) ImageNet-normalised -> uint8 (S, S, 3) RGB (clipped, rounded)."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    rgb = (pixel_values.detach().cpu().float() * std + mean).clamp(0, 1)  # (3, S, S)
    return (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (S, S, 3)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "denormalize", "normalize_array"]
