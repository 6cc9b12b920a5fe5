"""T-BTD: Target-Background TwinStream Decoder (our reading).

The paper names two top-down streams, one for the referred target and one for everything that
is not it, exchanging information at every scale, with a joint target/background prediction. Our
reading, kept light so that the decoder costs a few percent of the encoders:

- every fused stage map is projected once to a small width ``dim`` (1x1 conv + GroupNorm + GELU),
  shared by both streams (these "laterals" are also what D-MOLS reconstructs from);
- from the coarsest scale down, each stream adds its up-sampled state to the lateral, then
  *sees the other stream*: its 3x3 block takes ``[own, other]`` (2 x dim channels) and its output
  is added residually. Nothing at stride 4 is wider than 2 x dim;
- a 1x1 head per stream gives a logit map at the finest scale; the model forms the joint
  target-vs-background logit as ``target - background`` (a 2-class softmax written as one logit).

``twin=False`` keeps only the target stream (no exchange, no background head): the single-stream
ablation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from btdnet.models.layers import ConvNormAct


@dataclass
class DecoderOutput:
    """Output of ``TwinStreamDecoder`` at the finest input scale (stride s0, e.g. 4).

    Attributes:
        target_logits: (B, 1, H/s0, W/s0) target-stream logits.
        background_logits: (B, 1, H/s0, W/s0) background-stream logits, None when single-stream.
        target_features: (B, dim, H/s0, W/s0) final target-stream features.
        laterals: per-scale projected stage maps (B, dim, H/s_i, W/s_i), finest first.
    """

    target_logits: torch.Tensor
    background_logits: torch.Tensor | None
    target_features: torch.Tensor
    laterals: list[torch.Tensor]


class TwinStreamDecoder(nn.Module):
    """Two exchanging top-down streams over the fused stage maps.

    Args:
        in_channels: channels of the stage maps, finest first.
        dim: width of both streams.
        twin: build the background stream and the exchange (False: target stream only).
    """

    def __init__(self, *, in_channels: Sequence[int], dim: int, twin: bool = True) -> None:
        super().__init__()
        self.twin = twin
        block_in = 2 * dim if twin else dim
        self.laterals = nn.ModuleList(ConvNormAct(c, dim, 1) for c in in_channels)
        self.target_blocks = nn.ModuleList(ConvNormAct(block_in, dim, 3) for _ in in_channels)
        self.target_head = nn.Conv2d(dim, 1, 1)
        if twin:
            self.background_blocks = nn.ModuleList(
                ConvNormAct(block_in, dim, 3) for _ in in_channels
            )
            self.background_head = nn.Conv2d(dim, 1, 1)

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, features: Sequence[torch.Tensor]) -> DecoderOutput:
        """Stage maps (B, C_i, H/s_i, W/s_i), finest first -> ``DecoderOutput``."""
        laterals = [proj(f) for proj, f in zip(self.laterals, features)]
        target: torch.Tensor | None = None
        background: torch.Tensor | None = None
        for level in range(len(laterals) - 1, -1, -1):
            lateral = laterals[level]
            t_in = lateral if target is None else lateral + self._up(target, lateral)
            if self.twin:
                b_in = lateral if background is None else lateral + self._up(background, lateral)
                target = t_in + self.target_blocks[level](torch.cat([t_in, b_in], dim=1))
                background = b_in + self.background_blocks[level](torch.cat([b_in, t_in], dim=1))
            else:
                target = t_in + self.target_blocks[level](t_in)
        assert target is not None
        return DecoderOutput(
            target_logits=self.target_head(target),
            background_logits=self.background_head(background) if self.twin else None,
            target_features=target,
            laterals=laterals,
        )
