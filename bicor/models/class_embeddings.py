"""Learned class embeddings: one D-dim vector per class (clutter included)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ClassEmbeddings(nn.Module):
    """A (K, D) table of learned class embeddings (truncated normal, std 0.02), expanded per
    image.

    ``forward(batch_size) -> (B, K, D)``.
    """

    def __init__(self, *, num_classes: int, dim: int, init_std: float = 0.02) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.dim = dim
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.trunc_normal_(self.weight, std=init_std)

    def forward(self, batch_size: int) -> Tensor:
        return self.weight.unsqueeze(0).expand(batch_size, -1, -1)  # (B, K, D)
