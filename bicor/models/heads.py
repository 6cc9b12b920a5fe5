"""Output head: a parameter-light x4 up-sampler and a per-pixel dot product with the classes.

As in the authors' decoder: the stride-4 features (B, D, h, w) go through PixelShuffle(2) ->
LayerNorm2d -> GELU -> PixelShuffle(2) -> GELU, giving (B, D/16, 4h, 4w); the logits are the
unscaled dot product of those pixels with a bias-free Linear (D -> D/16) of the class
embeddings. The auxiliary (training-only) output shares the up-sampler, reads the fused
features F0 and the initial class embeddings through their own Linear, and sends no gradient
to the embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

UPSAMPLE_FACTOR = 16  # channels lost by the two PixelShuffle(2) steps


def class_dot_product(pixels: Tensor, embeddings: Tensor) -> Tensor:
    """``logits[b, k, h, w] = <pixels[b, :, h, w], embeddings[b, k]>``.

    ``pixels`` (B, C, H, W), ``embeddings`` (B, K, C) -> (B, K, H, W).
    """
    return torch.einsum("bkc,bchw->bkhw", embeddings, pixels)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an NCHW map (eps 1e-6, affine)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)


def _resize(logits: Tensor, output_size: tuple[int, int] | None) -> Tensor:
    if output_size is not None and tuple(logits.shape[-2:]) != tuple(output_size):
        logits = F.interpolate(logits, size=output_size, mode="bilinear", align_corners=False)
    return logits


class SegmentationHead(nn.Module):
    """Main and auxiliary class logits from stride-4 features.

    Args:
        dim: D, channels of the features and embeddings (a multiple of 16).
        auxiliary: build the auxiliary classifier (``auxiliary`` is unusable without it).

    ``forward(features (B, D, h, w), embeddings (B, K, D), output_size=None)`` and
    ``auxiliary(F0, E0, output_size=None)`` -> logits (B, K, 4h, 4w), bilinearly resized to
    ``output_size`` when the input size was not a multiple of 4.
    """

    def __init__(self, *, dim: int, auxiliary: bool = True) -> None:
        super().__init__()
        if dim % UPSAMPLE_FACTOR != 0:
            raise ValueError(f"dim must be a multiple of {UPSAMPLE_FACTOR}, got {dim}")
        channels = dim // UPSAMPLE_FACTOR
        self.upsampler = nn.Sequential(
            nn.PixelShuffle(2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.PixelShuffle(2),
            nn.GELU(),
        )
        self.classifier = nn.Linear(dim, channels, bias=False)
        self.aux_classifier = nn.Linear(dim, channels, bias=False) if auxiliary else None

    def forward(
        self, features: Tensor, embeddings: Tensor, output_size: tuple[int, int] | None = None
    ) -> Tensor:
        pixels = self.upsampler(features)  # (B, D/16, 4h, 4w)
        return _resize(class_dot_product(pixels, self.classifier(embeddings)), output_size)

    def auxiliary(
        self, features: Tensor, embeddings: Tensor, output_size: tuple[int, int] | None = None
    ) -> Tensor:
        """Auxiliary logits; ``embeddings`` are detached (the authors' static classifier)."""
        if self.aux_classifier is None:
            raise RuntimeError("this head was built without the auxiliary classifier")
        pixels = self.upsampler(features)  # (B, D/16, 4h, 4w)
        weights = self.aux_classifier(embeddings.detach())
        return _resize(class_dot_product(pixels, weights), output_size)
