"""D-MOLS: Dual-Modal Object Learning Strategy, training-only auxiliary objectives (our reading).

The paper describes "multimodal feature reconstruction" in both modalities, used only in
training. Our reading, chosen so that both heads are light and the main forward is untouched:

- **Visual branch** (``VisualReconstructionHead``): on the decoder's stride-8 lateral map
  (B, dim, H/8, W/8), cells are masked at random with a higher rate inside and around the target
  (the ground-truth mask dilated by two cells) than elsewhere, replaced by a learned mask token,
  modulated by the sentence (FiLM) and passed through two 3x3 blocks that predict the *pixels* of
  every masked 8x8 cell (normalised per cell, as MAE does). Pixels are a fixed target, so the
  objective cannot collapse; to fill in the target the head needs the visible context and the
  text, which pushes the fused features to describe the referred object.
- **Language branch** (``WordPredictionHead``): 15% of the real words (never the first token or
  the last real token: [CLS]/[SEP]) are replaced by the tokenizer's mask id; the masked sentence
  goes through the text encoder in the same batch as the clean one (one call, 2B rows). Each
  masked word is predicted from its contextual feature and the target-region feature (the final
  target-stream features pooled with the ground-truth mask) by a small MLP whose output is scored
  against the text encoder's own word-embedding matrix (tied: no V x D matrix is added).

A second reading (``reconstruct="features"``, an alternative; docs/method.md) takes
"feature reconstruction" literally: the visual head predicts the clean lateral features of the
masked cells (detached, normalised per cell like the pixels) and the word head predicts the
text encoder's clean contextual feature of each masked word (detached; loss 1 - cosine), so no
vocabulary is scored and the targets are what the model itself computes without masking.

``BTDNet`` calls this module only when training with targets; ``strip_training_heads`` removes it,
so inference neither runs nor stores it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from btdnet.models.config import DMOLS_RECONSTRUCTIONS
from btdnet.models.layers import ConvNormAct


def pool_region(features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mask-weighted mean of ``features`` (B, C, h, w) under ``targets`` (B, H, W) -> (B, C).

    Samples with an empty mask fall back to the mean over the whole map.
    """
    weights = F.interpolate(targets[:, None].float(), size=features.shape[-2:], mode="area")
    area = weights.sum(dim=(2, 3))  # (B, 1)
    weights = torch.where(area[..., None, None] > 0, weights, torch.ones_like(weights))
    weights = weights.to(features.dtype)
    pooled = (features * weights).sum(dim=(2, 3))  # (B, C)
    return pooled / weights.sum(dim=(2, 3)).clamp_min(1e-6)


class VisualReconstructionHead(nn.Module):
    """Masked feature cells (+ sentence) -> the pixels (or the features) of each cell.

    Args:
        dim: channels of the input map.
        text_dim: width of the sentence feature.
        patch: pixels per cell side (the map's stride).
        out_channels: channels predicted per cell (3 p² pixels, or ``dim`` features).
    """

    def __init__(self, *, dim: int, text_dim: int, patch: int, out_channels: int) -> None:
        super().__init__()
        self.patch = patch
        self.mask_token = nn.Parameter(torch.randn(dim) * 0.02)
        self.film = nn.Linear(text_dim, 2 * dim)
        self.body = nn.Sequential(ConvNormAct(dim, dim, 3), ConvNormAct(dim, dim, 3))
        self.to_pixels = nn.Conv2d(dim, out_channels, 1)

    def forward(
        self, features: torch.Tensor, cell_mask: torch.Tensor, sentence: torch.Tensor
    ) -> torch.Tensor:
        """features (B, C, h, w), cell_mask (B, 1, h, w) bool, sentence (B, D) -> (B, out, h, w)."""
        token = self.mask_token.to(features.dtype)[None, :, None, None]  # (1, C, 1, 1)
        x = torch.where(cell_mask, token, features)
        scale, shift = self.film(sentence).chunk(2, dim=-1)  # (B, C) each
        x = x * (1 + scale[..., None, None]) + shift[..., None, None]
        return self.to_pixels(self.body(x))


class WordPredictionHead(nn.Module):
    """Masked-word feature + target-region feature -> vocabulary logits (tied embeddings).

    Args:
        text_dim: width of the word features (and of the embedding matrix rows).
        visual_dim: width of the region feature.
        vocab_size: rows of the embedding matrix (its logit bias), or None when the head only
            predicts word features (``hidden``).
    """

    def __init__(self, *, text_dim: int, visual_dim: int, vocab_size: int | None) -> None:
        super().__init__()
        self.fuse = nn.Sequential(
            nn.Linear(text_dim + visual_dim, text_dim), nn.GELU(), nn.LayerNorm(text_dim)
        )
        self.bias = nn.Parameter(torch.zeros(vocab_size)) if vocab_size is not None else None

    def hidden(self, words: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        """words (N, D), region (N, C) -> the predicted word feature (N, D)."""
        return self.fuse(torch.cat([words, region], dim=-1))

    def forward(
        self, words: torch.Tensor, region: torch.Tensor, embeddings: torch.Tensor
    ) -> torch.Tensor:
        """words (N, D), region (N, C), embeddings (V, D) -> logits (N, V)."""
        if self.bias is None:
            raise RuntimeError("this word head predicts features only (built without vocab_size)")
        hidden = self.hidden(words, region)  # (N, D)
        return F.linear(hidden, embeddings.to(hidden.dtype), self.bias.to(hidden.dtype))


class DualModalObjectLearning(nn.Module):
    """Both D-MOLS branches, their masking and their (unweighted) losses.

    Args:
        visual_dim: channels of the decoder laterals / target features.
        text_dim: width of the word features.
        vocab_size: size of the text encoder's vocabulary.
        patch: stride of the lateral map the visual branch works on.
        mask_token_id: the tokenizer's [MASK] id (103 for BERT-style WordPiece).
        region_mask_ratio: masking rate of cells in and around the target.
        context_mask_ratio: masking rate of the other cells.
        word_mask_ratio: masking rate of the real words (at least one word per sentence).
        reconstruct: ``"inputs"`` (pixels and word ids) or ``"features"`` (the clean features).
    """

    RECONSTRUCT = DMOLS_RECONSTRUCTIONS

    def __init__(
        self,
        *,
        visual_dim: int,
        text_dim: int,
        vocab_size: int,
        patch: int,
        mask_token_id: int,
        region_mask_ratio: float,
        context_mask_ratio: float,
        word_mask_ratio: float,
        reconstruct: str = "inputs",
    ) -> None:
        super().__init__()
        if reconstruct not in self.RECONSTRUCT:
            raise ValueError(f"reconstruct must be one of {self.RECONSTRUCT}, got {reconstruct!r}")
        self.reconstruct = reconstruct
        features = reconstruct == "features"
        self.mask_token_id = mask_token_id
        self.region_mask_ratio = region_mask_ratio
        self.context_mask_ratio = context_mask_ratio
        self.word_mask_ratio = word_mask_ratio
        self.visual = VisualReconstructionHead(
            dim=visual_dim,
            text_dim=text_dim,
            patch=patch,
            out_channels=visual_dim if features else 3 * patch * patch,
        )
        self.language = WordPredictionHead(
            text_dim=text_dim, visual_dim=visual_dim, vocab_size=None if features else vocab_size
        )

    # ------------------------------------------------------------------ language branch

    def mask_words(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(masked_ids (B, T), selected (B, T) bool)``.

        Candidates are real tokens other than the first and the last real one; each is chosen
        with ``word_mask_ratio``, and one is forced in sentences where none was chosen.
        """
        real = attention_mask.bool()
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]  # (1, T)
        last = real.long().sum(1, keepdim=True) - 1  # (B, 1)
        candidates = real & (positions > 0) & (positions < last)
        draw = torch.rand(input_ids.shape, device=input_ids.device)
        selected = candidates & (draw < self.word_mask_ratio)
        forced = draw.masked_fill(~candidates, -1.0).argmax(dim=1, keepdim=True)  # (B, 1)
        need = candidates.any(1, keepdim=True) & ~selected.any(1, keepdim=True)
        selected = selected | (need & (positions == forced))
        masked_ids = input_ids.masked_fill(selected, self.mask_token_id)
        return masked_ids, selected

    def language_loss(
        self,
        *,
        masked_words: torch.Tensor,
        selected: torch.Tensor,
        input_ids: torch.Tensor,
        region: torch.Tensor,
        embeddings: torch.Tensor,
        clean_words: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-entropy of the masked words (``"features"``: 1 - cosine to their clean features).

        Args:
            masked_words: (B, T, D) text-encoder features of the masked sentences.
            selected: (B, T) bool, the masked positions.
            input_ids: (B, T) original ids (the labels).
            region: (B, C) target-region features.
            embeddings: (V, D) the text encoder's word-embedding matrix.
            clean_words: (B, T, D) features of the unmasked sentences (needed by ``"features"``).
        """
        if self.reconstruct == "features":
            if clean_words is None:
                raise ValueError("feature reconstruction needs clean_words")
            if not bool(selected.any()):  # as below: every parameter in the graph, at weight 0
                hidden = self.language.hidden(masked_words[:1, 0], region[:1])
                return hidden.float().sum() * 0.0
            batch_index = selected.nonzero(as_tuple=True)[0]  # (N,)
            predicted = self.language.hidden(masked_words[selected], region[batch_index])
            truth = clean_words[selected].detach()  # (N, D)
            cosine = F.cosine_similarity(predicted.float(), truth.float(), dim=-1)  # (N,)
            return (1 - cosine).mean()
        if not bool(selected.any()):
            # No maskable word in the batch: run the head once at zero weight, so that every
            # parameter still takes part in the graph (distributed training expects that).
            logits = self.language(masked_words[:1, 0], region[:1], embeddings)
            return F.cross_entropy(logits.float(), input_ids[:1, 0]) * 0.0
        batch_index = selected.nonzero(as_tuple=True)[0]  # (N,)
        logits = self.language(masked_words[selected], region[batch_index], embeddings)
        return F.cross_entropy(logits.float(), input_ids[selected])

    # ------------------------------------------------------------------ visual branch

    def mask_cells(self, targets: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Random cell mask (B, 1, h, w) bool, denser in and around the target (B, H, W)."""
        target_cells = F.interpolate(targets[:, None].float(), size=size, mode="area") > 0
        around = F.max_pool2d(target_cells.float(), kernel_size=5, stride=1, padding=2) > 0
        rate = torch.where(around, self.region_mask_ratio, self.context_mask_ratio)
        return torch.rand(rate.shape, device=rate.device) < rate

    def visual_loss(
        self,
        *,
        features: torch.Tensor,
        pixel_values: torch.Tensor,
        targets: torch.Tensor,
        sentence: torch.Tensor,
    ) -> torch.Tensor:
        """Mean squared error of the reconstructed (per-cell normalised) pixels of masked cells
        (``"features"``: of their clean, detached features).

        Args:
            features: (B, C, H/p, W/p) map to reconstruct from (p = ``patch``).
            pixel_values: (B, 3, H, W) network input.
            targets: (B, H, W) 0/1 mask.
            sentence: (B, D) sentence feature.
        """
        cell_mask = self.mask_cells(targets, tuple(features.shape[-2:]))  # (B, 1, h, w)
        prediction = self.visual(features, cell_mask, sentence).float()  # (B, out, h, w)
        if self.reconstruct == "features":
            truth = features.detach().float()  # (B, C, h, w)
        else:
            truth = F.pixel_unshuffle(pixel_values.float(), self.visual.patch)  # (B, 3p^2, h, w)
        mean = truth.mean(dim=1, keepdim=True)
        var = truth.var(dim=1, keepdim=True, unbiased=False)
        truth = (truth - mean) / (var + 1e-6).sqrt()
        error = (prediction - truth).pow(2).mean(dim=1, keepdim=True)  # (B, 1, h, w)
        weights = cell_mask.float()
        return (error * weights).sum() / weights.sum().clamp_min(1.0)
