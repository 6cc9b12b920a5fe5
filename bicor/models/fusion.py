"""Multi-scale fusion of the four encoder stages into one stride-4 map (BiCoR-Seg F0).

As in the authors' model: a Linear per stage (a 1x1 projection with bias) to ``dim`` channels,
bilinear up-sampling to the first (finest) stage, concatenation from the deepest stage to the
finest, and one bias-free 1x1 convolution back to ``dim`` channels; no norm, no activation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultiScaleFusion(nn.Module):
    """Four NCHW stage maps (finest first, channels ``in_channels[i]``) -> F0 (B, dim, H0, W0).

    ``F0 = W_f [up(P_n(X_n)); ...; up(P_1(X_1))]`` with ``P_i`` a per-pixel Linear, ``up`` the
    bilinear resize to the first map's size and ``W_f`` a bias-free 1x1 conv from ``n * dim``.
    """

    def __init__(self, *, in_channels: Sequence[int], dim: int = 256) -> None:
        super().__init__()
        if len(in_channels) < 1:
            raise ValueError("MultiScaleFusion needs at least one input stage")
        self.in_channels = tuple(int(c) for c in in_channels)
        self.dim = dim
        self.projections = nn.ModuleList(nn.Linear(c, dim) for c in self.in_channels)
        self.fuse = nn.Conv2d(dim * len(self.in_channels), dim, 1, bias=False)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        if len(features) != len(self.projections):
            raise ValueError(
                f"MultiScaleFusion expects {len(self.projections)} stage maps, got {len(features)}"
            )
        size = features[0].shape[-2:]
        projected = []
        for feature, projection in zip(features, self.projections):
            x = projection(feature.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, dim, h, w)
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            projected.append(x)
        return self.fuse(torch.cat(projected[::-1], dim=1))  # (B, dim, H0, W0)
