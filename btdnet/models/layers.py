"""Layers shared by several model modules (one definition each)."""

from __future__ import annotations

from torch import nn


def group_norm_groups(channels: int) -> int:
    """The largest of 8, 4, 2 groups that divides ``channels`` (else 1)."""
    for groups in (8, 4, 2):
        if channels % groups == 0:
            return groups
    return 1


class ConvNormAct(nn.Sequential):
    """Conv (no bias, 'same' padding) + GroupNorm + GELU: (B, C_in, H, W) -> (B, C_out, H, W).

    The block of T-BTD (``twin_stream_decoder.py``) and D-MOLS (``dmols.py``). Submodules are
    ``0`` (conv), ``1`` (norm), ``2`` (activation), as saved checkpoints name them.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.GroupNorm(group_norm_groups(out_channels), out_channels),
            nn.GELU(),
        )
