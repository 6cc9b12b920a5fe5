"""BSC: Bidirectional Spatial Correlation between an image stage and the words (our reading).

The paper names the module and its purpose (aligning vision and language at every stage, in both
directions, guided by the mask); it gives no equations, so this is our reading of it:

1. Correlation. Pixels (LayerNorm, then a linear map to a small width ``dim``) and words (linear
   maps to ``dim``) are compared by a scaled dot product: ``A`` (B, HW, T). Working at ``dim``
   (64-128) instead of the stage width keeps the module cheap at stride 4.
2. Vision <- language. Softmax of ``A`` over the real words gives each pixel a language context;
   its elementwise product with the pixel projection (the multimodal product of LAVT's PWAM) is
   mapped back to the stage width and added through a tanh gate. When bidirectional, the
   addition is also weighted per pixel by the sigmoid of the sentence-to-pixel correlation map,
   so language is injected where the sentence points: this is how the alignment map *guides*
   the fusion, and it makes the map's parameters train even without the alignment loss.
3. Sentence-to-pixel correlation map. The mask-weighted mean of the (current) words is projected
   to ``dim`` and correlated with every pixel: a (B, 1, H, W) logit map with a learnable scale
   and bias, exposed so that the down-sampled ground-truth mask can supervise it.
4. Language <- vision. Softmax of ``A`` over pixels gives each word a visual context; a residual
   MLP on ``[LayerNorm(word), context]`` updates the words, which feed the next stage: language
   is refined by vision stage by stage. The last stage has no next stage, so it skips this step.

With ``bidirectional=False`` only the plain one-way fusion of step 2 (without the map weighting)
remains: the LAVT-style baseline that the BSC ablation compares against. The fused visual map
feeds the next image-encoder stage (early fusion).

A second reading (``reading="language_first"``, an alternative; docs/method.md) orders
the two directions the other way round inside a stage: the words are first refined from the
pixels (step 4, at every stage, the last included), then the *refined* words are injected into
the pixels (step 2, with keys and scores recomputed from them, no map weighting), and the map of
step 3 is computed from the refined sentence as an output to supervise: the mask guides the
alignment only through the loss, never by gating the fusion.

A third reading (``reading="from_baseline"``) keeps the gated reading's order but scales its two
additions over the one-way fusion by learnable scalars that start at zero: the map's weighting
becomes ``1 + g_map * (sigmoid(map) - 1)`` and the word update ``words + g_words * delta``. At
initialisation the block computes exactly the one-way fusion (the words pass unchanged), and
training decides how much of the bidirectional path to use (ReZero-style gating).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from btdnet.models.config import BSC_READINGS
from btdnet.models.text_encoder import masked_mean


@dataclass
class BSCOutput:
    """Output of one BSC block.

    Attributes:
        visual: (B, C, H, W) fused visual features (input to the next stage and the decoder).
        words: (B, T, D_text) word features for the next stage (unchanged when not updated).
        correlation: (B, 1, H, W) sentence-to-pixel correlation logits, or None when the block
            is not bidirectional.
    """

    visual: torch.Tensor
    words: torch.Tensor
    correlation: torch.Tensor | None


class BidirectionalSpatialCorrelation(nn.Module):
    """One BSC block (see the module docstring).

    Args:
        visual_dim: channels of the stage's visual features.
        text_dim: width of the word features.
        dim: correlation width (small: the module's cost is linear in it).
        bidirectional: build the correlation map and (with ``update_words``) the word update.
        update_words: update the words from vision (False for the last stage); ignored by the
            ``language_first`` reading, which updates them at every stage.
        reading: ``"gated"`` (the module docstring's steps 1-4), ``"language_first"`` or
            ``"from_baseline"`` (steps 1-4 with the map weighting and word update gated from 0).
    """

    READINGS = BSC_READINGS

    def __init__(
        self,
        *,
        visual_dim: int,
        text_dim: int,
        dim: int,
        bidirectional: bool = True,
        update_words: bool = True,
        reading: str = "gated",
    ) -> None:
        super().__init__()
        if reading not in self.READINGS:
            raise ValueError(f"BSC reading must be one of {self.READINGS}, got {reading!r}")
        self.dim = dim
        self.bidirectional = bidirectional
        self.language_first = bidirectional and reading == "language_first"
        self.update_words = bidirectional and (update_words or self.language_first)
        self.from_baseline = bidirectional and reading == "from_baseline"
        if self.from_baseline:
            self.map_gate = nn.Parameter(torch.zeros(()))
            self.word_gate = nn.Parameter(torch.zeros(()))
        self.pixel_norm = nn.LayerNorm(visual_dim)
        self.pixel_proj = nn.Linear(visual_dim, dim)
        self.word_key = nn.Linear(text_dim, dim)
        self.word_value = nn.Linear(text_dim, dim)
        self.visual_update = nn.Linear(dim, visual_dim)
        self.visual_gate = nn.Linear(dim, visual_dim)
        if bidirectional:
            self.sentence_proj = nn.Linear(text_dim, dim)
            self.map_scale = nn.Parameter(torch.ones(()))
            self.map_bias = nn.Parameter(torch.zeros(()))
        if self.update_words:
            self.word_norm = nn.LayerNorm(text_dim)
            self.word_update = nn.Sequential(
                nn.Linear(text_dim + dim, dim), nn.GELU(), nn.Linear(dim, text_dim)
            )

    def forward(
        self, visual: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor
    ) -> BSCOutput:
        """Fuse a stage's features with the words.

        Args:
            visual: (B, C, H, W) stage output.
            words: (B, T, D_text) word features.
            word_mask: (B, T) bool, True for real tokens.
        """
        b, c, h, w = visual.shape
        # A view when the map is channels_last (as the image encoder gives it), else one copy.
        pixels = visual.permute(0, 2, 3, 1).reshape(b, h * w, c)  # (B, HW, C)
        query = self.pixel_proj(self.pixel_norm(pixels))  # (B, HW, d)
        scores = self._scores(query, words)  # (B, HW, T)
        if self.language_first:
            words = self._refine_words(words, scores, query)
            scores = self._scores(query, words)

        pad = ~word_mask[:, None, :]  # (B, 1, T)
        to_words = scores.masked_fill(pad, torch.finfo(scores.dtype).min).softmax(dim=-1)
        language_context = torch.matmul(to_words, self.word_value(words))  # (B, HW, d)
        product = language_context * query  # (B, HW, d)
        injected = torch.tanh(self.visual_gate(product)) * self.visual_update(product)  # (B, HW, C)

        correlation = None
        if self.bidirectional:
            sentence = self.sentence_proj(masked_mean(words, word_mask))  # (B, d)
            corr = torch.matmul(query, sentence.unsqueeze(-1)) / math.sqrt(self.dim)  # (B, HW, 1)
            corr = corr * self.map_scale + self.map_bias
            if self.from_baseline:
                injected = injected * (1 + self.map_gate * (torch.sigmoid(corr) - 1))
            elif not self.language_first:
                injected = injected * torch.sigmoid(corr)
            correlation = corr.transpose(1, 2).reshape(b, 1, h, w)  # (B, 1, H, W)

        fused = (pixels + injected).transpose(1, 2).reshape(b, c, h, w)  # (B, C, H, W)
        if self.update_words and not self.language_first:
            words = self._refine_words(words, scores, query)
        return BSCOutput(visual=fused, words=words, correlation=correlation)

    def _scores(self, query: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """Pixel-word scaled dot products: query (B, HW, d), words (B, T, D) -> (B, HW, T)."""
        keys = self.word_key(words)  # (B, T, d)
        return torch.matmul(query, keys.transpose(1, 2)) / math.sqrt(self.dim)

    def _refine_words(
        self, words: torch.Tensor, scores: torch.Tensor, query: torch.Tensor
    ) -> torch.Tensor:
        """Language <- vision (step 4): words (B, T, D) + MLP([LN(words), visual context])."""
        to_pixels = scores.transpose(1, 2).softmax(dim=-1)  # (B, T, HW)
        visual_context = torch.matmul(to_pixels, query)  # (B, T, d)
        delta = self.word_update(torch.cat([self.word_norm(words), visual_context], dim=-1))
        if self.from_baseline:
            delta = self.word_gate * delta
        return words + delta  # (B, T, D_text)
