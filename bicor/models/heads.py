"""Output heads: per-pixel dot product of pixel features with projected class embeddings."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def class_dot_product(pixels: Tensor, embeddings: Tensor) -> Tensor:
    """``logits[b, k, h, w] = <pixels[b, :, h, w], embeddings[b, k]> / sqrt(C)``.

    ``pixels`` (B, C, H, W), ``embeddings`` (B, K, C) -> (B, K, H, W).
    """
    return torch.einsum("bchw,bkc->bkhw", pixels, embeddings) / math.sqrt(pixels.shape[1])


class PixelShuffleUp(nn.Module):
    """x2 up-sampling: 3x3 conv to ``4 * out_channels``, PixelShuffle(2), BatchNorm, ReLU."""

    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4 * out_channels, 3, padding=1, bias=False)
        self.shuffle = nn.PixelShuffle(2)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.shuffle(self.conv(x))), inplace=True)  # (B, C, 2H, 2W)


class SegmentationHead(nn.Module):
    """Main head: two PixelShuffle(2) steps from stride 4 to full resolution, then logits as a
    dot product with the class embeddings projected to the last step's channels.

    ``forward(features (B, D, H/4, W/4), embeddings (B, K, D), output_size=None)`` ->
    logits (B, K, H, W); ``output_size`` resizes (bilinear) when the input was not a multiple
    of 4.
    """

    def __init__(self, *, dim: int, channels: tuple[int, int] = (128, 64)) -> None:
        super().__init__()
        c1, c2 = channels
        self.up1 = PixelShuffleUp(in_channels=dim, out_channels=c1)
        self.up2 = PixelShuffleUp(in_channels=c1, out_channels=c2)
        self.pixel_proj = nn.Conv2d(c2, c2, 1)
        self.embedding_proj = nn.Linear(dim, c2)

    def forward(
        self, features: Tensor, embeddings: Tensor, output_size: tuple[int, int] | None = None
    ) -> Tensor:
        pixels = self.pixel_proj(self.up2(self.up1(features)))  # (B, C2, 4h, 4w)
        logits = class_dot_product(pixels, self.embedding_proj(embeddings))
        if output_size is not None and tuple(logits.shape[-2:]) != tuple(output_size):
            logits = F.interpolate(logits, size=output_size, mode="bilinear", align_corners=False)
        return logits


class AuxiliaryHead(nn.Module):
    """Training-only head on F0 with the initial embeddings: a 1x1 projection at stride 4, the
    dot product with the projected embeddings, bilinear up-sampling to ``output_size``.

    ``forward(features (B, D, h, w), embeddings (B, K, D), output_size) -> (B, K, H, W)``.
    """

    def __init__(self, *, dim: int, channels: int = 64) -> None:
        super().__init__()
        self.pixel_proj = nn.Conv2d(dim, channels, 1)
        self.embedding_proj = nn.Linear(dim, channels)

    def forward(self, features: Tensor, embeddings: Tensor, output_size: tuple[int, int]) -> Tensor:
        logits = class_dot_product(self.pixel_proj(features), self.embedding_proj(embeddings))
        return F.interpolate(logits, size=output_size, mode="bilinear", align_corners=False)
