"""Presence head: does the expression refer to anything in the image? (generalized referring)

BTDNet as published always paints something. Generalized referring segmentation (GRES,
gRefCOCO; ReLA, Liu, Ding & Jiang, CVPR 2023) adds expressions with no target, which need a
separate "no target" decision: ReLA predicts it from its region tokens. Our head reads what
BTDNet already has, after language has been fused into every image stage:

- the decoder's final target-stream features (B, C, h, w), pooled two ways: weighted by the
  decoder's own target probability (what the mask would mark) and by a global max (the
  strongest evidence anywhere);
- the sentence as refined by the last BSC stage (B, D), projected to C and multiplied with the
  weighted pool (does what is marked match the words?);
- two statistics of the low-resolution joint logit: its maximum and the mean probability.

A two-layer MLP turns these into one logit per expression; ``sigmoid(logit) < threshold`` is
the answer "no target" (the mask is then empty). It costs a few thousand multiply-adds per
expression, nothing next to the encoders (see ``docs/generalized.md`` for the measured figure).
"""

from __future__ import annotations

import torch
from torch import nn


class PresenceHead(nn.Module):
    """One logit per sample that the expression's target is present.

    Args:
        visual_dim: channels of the decoder's target features (``decoder_dim``).
        text_dim: width of the sentence feature (the text encoder's hidden size).
        hidden_dim: width of the MLP's hidden layer.
    """

    def __init__(self, *, visual_dim: int, text_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.text_proj = nn.Linear(text_dim, visual_dim)
        self.mlp = nn.Sequential(
            nn.Linear(3 * visual_dim + 2, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, 1),
        )

    def forward(
        self, features: torch.Tensor, logits: torch.Tensor, sentence: torch.Tensor
    ) -> torch.Tensor:
        """Return the presence logits (B,).

        Args:
            features: (B, C, h, w) decoder target-stream features.
            logits: (B, 1, h, w) joint target-vs-background logits at the same resolution.
            sentence: (B, D) sentence feature.
        """
        features = features.float()
        logits = logits.float()
        prob = torch.sigmoid(logits)  # (B, 1, h, w)
        weighted = (features * prob).sum(dim=(2, 3)) / prob.sum(dim=(2, 3)).clamp_min(1e-6)
        peak = features.amax(dim=(2, 3))  # (B, C)
        text = self.text_proj(sentence.float())  # (B, C)
        stats = torch.cat([logits.amax(dim=(2, 3)), prob.mean(dim=(2, 3))], dim=1)  # (B, 2)
        joined = torch.cat([weighted, peak, weighted * text, stats], dim=1)  # (B, 3C + 2)
        return self.mlp(joined)[:, 0]  # (B,)
