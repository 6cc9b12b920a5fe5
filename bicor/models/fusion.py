"""Multi-scale fusion of the four encoder stages into one stride-4 map (BiCoR-Seg F0)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Conv (same padding, no bias) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class MultiScaleFusion(nn.Module):
    """Project each stage to ``dim`` channels, up-sample to the first stage, concatenate, fuse.

    Input: a list of NCHW stage maps, the first at the finest stride (4 for the usual
    backbones), channels ``in_channels[i]``. Output: F0, (B, dim, H0, W0) at the first map's
    size: 1x1 projections, bilinear up-sampling, concatenation (B, n*dim, H0, W0), a 1x1 fusing
    conv and a 3x3 refining conv.
    """

    def __init__(self, *, in_channels: Sequence[int], dim: int = 256) -> None:
        super().__init__()
        if len(in_channels) < 1:
            raise ValueError("MultiScaleFusion needs at least one input stage")
        self.in_channels = tuple(int(c) for c in in_channels)
        self.dim = dim
        self.projections = nn.ModuleList(conv_bn_relu(c, dim, 1) for c in self.in_channels)
        self.fuse = conv_bn_relu(dim * len(self.in_channels), dim, 1)
        self.refine = conv_bn_relu(dim, dim, 3)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        if len(features) != len(self.projections):
            raise ValueError(
                f"MultiScaleFusion expects {len(self.projections)} stage maps, got {len(features)}"
            )
        size = features[0].shape[-2:]
        projected = []
        for feature, projection in zip(features, self.projections):
            x = projection(feature)
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            projected.append(x)
        fused = torch.cat(projected, dim=1)  # (B, n*dim, H0, W0)
        return self.refine(self.fuse(fused))
