"""HBIS: Heatmap-driven Bidirectional Information Synergy (BiCoR-Seg, method.md section 2).

One layer exchanges information between the pixel features F (B, D, H, W) (stride 4) and the
class embeddings E (B, K, D), as in the authors' published layer (``BiCoRLayer``, one inner
step, temperature 1, FiLM blend 0.5):

1. heatmap logits ``A[b, k, p] = <W_q LN(E)[b, k], LN(F)[b, :, p]> / sqrt(D)`` (``W_q`` without
   bias);
2. features -> embeddings: pooling weights ``w`` are the sigmoid heatmap kept on each class's
   top-k pixels, ``k = min(HW, max(min_topk, round(ratio * HW)))``, renormalised to sum 1 (all
   pixels when that sum is <= 1e-6); ``w`` carries no gradient. The context is
   ``C = w @ (W_v LN(F))`` (``W_v`` a bias-free 1x1 projection), and
   ``E' = g * MLP_c(C) + (1 - g) * E`` with ``g = sigmoid(MLP_g([LN(E), C]))``;
3. embeddings -> features: every class gives a FiLM of the raw features, scale
   ``1 + tanh(W_s E')``, shift ``W_b E'``; the per-pixel softmax-over-classes heatmap mixes them:
   ``F_new = sum_k softmax_k(A) * (scale_k * F + shift_k)``, and ``F' = 0.5 F + 0.5 F_new``;
4. the heatmap logits (B, K, H, W) are returned as a low-resolution prediction.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

POOL_EPS = 1e-6


def mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))


def topk_count(num_pixels: int, topk_ratio: float, min_topk: int) -> int:
    """Pixels pooled per class: ``min(HW, max(min_topk, round(ratio * HW)))`` (Python's round,
    as in the authors' code)."""
    return min(num_pixels, max(min_topk, round(topk_ratio * num_pixels)))


class HBISLayer(nn.Module):
    """One HBIS layer.

    Args:
        dim: D, the channels of the features and of the class embeddings.
        topk_ratio: share of pixels pooled per class, in (0, 1]; 1 pools every pixel.
        min_topk: lower bound of the pooled pixel count.
        film_blend: weight of the FiLM-modulated features in ``F'`` (0.5 in the paper).
    """

    def __init__(
        self,
        *,
        dim: int,
        topk_ratio: float = 1.0,
        min_topk: int = 64,
        film_blend: float = 0.5,
    ) -> None:
        super().__init__()
        if not 0.0 < topk_ratio <= 1.0:
            raise ValueError(f"topk_ratio must be in (0, 1], got {topk_ratio}")
        self.dim = dim
        self.topk_ratio = float(topk_ratio)
        self.min_topk = int(min_topk)
        self.film_blend = float(film_blend)
        self.feature_norm = nn.LayerNorm(dim)
        self.embedding_norm = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)  # the 1x1 conv, applied to (B, HW, D)
        self.gate = mlp(2 * dim, dim, dim)
        self.candidate = mlp(dim, dim, dim)
        self.film_scale = nn.Linear(dim, dim)
        self.film_shift = nn.Linear(dim, dim)

    @torch.no_grad()
    def pooling_weights(self, heatmap: Tensor) -> Tensor:
        """Sigmoid heatmap kept on each class's top-k pixels, renormalised to sum 1 (no gradient).

        ``heatmap`` (B, K, HW) logits -> weights (B, K, HW). A class whose kept weights sum to at
        most 1e-6 falls back to the renormalised sigmoid over all pixels.
        """
        probs = heatmap.sigmoid()
        k = topk_count(heatmap.shape[-1], self.topk_ratio, self.min_topk)
        index = probs.topk(k, dim=-1).indices  # (B, K, k)
        kept = probs * torch.zeros_like(probs).scatter_(-1, index, 1.0)
        total = kept.sum(dim=-1, keepdim=True)
        every = probs / (probs.sum(dim=-1, keepdim=True) + POOL_EPS)
        return torch.where(total <= POOL_EPS, every, kept / (total + POOL_EPS))

    def forward(self, features: Tensor, embeddings: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Run one layer.

        Args:
            features: (B, D, H, W) pixel features.
            embeddings: (B, K, D) class embeddings.

        Returns:
            ``(features', embeddings', heatmap)`` of shapes (B, D, H, W), (B, K, D) and
            (B, K, H, W) (heatmap logits).
        """
        b, d, h, w = features.shape
        if d != self.dim or embeddings.shape[-1] != self.dim:
            raise ValueError(
                f"HBISLayer(dim={self.dim}) got features {tuple(features.shape)} and "
                f"embeddings {tuple(embeddings.shape)}"
            )
        tokens = features.flatten(2).transpose(1, 2)  # (B, HW, D) raw features
        normed = self.feature_norm(tokens)  # (B, HW, D)
        normed_embeddings = self.embedding_norm(embeddings)  # (B, K, D)
        heatmap = self.query(normed_embeddings) @ normed.transpose(1, 2) / math.sqrt(d)

        # features -> embeddings (pooling weights without gradient)
        weights = self.pooling_weights(heatmap)  # (B, K, HW)
        context = weights @ self.value(normed)  # (B, K, D)
        gate = self.gate(torch.cat([normed_embeddings, context], dim=-1)).sigmoid()
        new_embeddings = gate * self.candidate(context) + (1.0 - gate) * embeddings

        # embeddings -> features: per-class FiLM of the raw features, mixed by the softmax heatmap
        mix = heatmap.softmax(dim=1).transpose(1, 2)  # (B, HW, K)
        scale = 1.0 + torch.tanh(self.film_scale(new_embeddings))  # (B, K, D)
        shift = self.film_shift(new_embeddings)  # (B, K, D)
        modulated = tokens * (mix @ scale) + mix @ shift  # (B, HW, D)
        new_features = modulated.transpose(1, 2).reshape(b, d, h, w)  # (B, D, H, W)
        blended = (1.0 - self.film_blend) * features + self.film_blend * new_features
        return blended, new_embeddings, heatmap.reshape(b, -1, h, w)  # heatmap (B, K, H, W)


class HBISStack(nn.Module):
    """L HBIS layers applied in turn.

    ``forward(features (B, D, H, W), embeddings (B, K, D))`` returns the final features, the
    final embeddings, the per-layer heatmap logits (L x (B, K, H, W)) and the per-layer
    embeddings (L x (B, K, D)).
    """

    def __init__(self, layers: list[HBISLayer]) -> None:
        super().__init__()
        if not layers:
            raise ValueError("HBISStack needs at least one layer")
        self.layers = nn.ModuleList(layers)

    def forward(
        self, features: Tensor, embeddings: Tensor
    ) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor]]:
        heatmaps: list[Tensor] = []
        layer_embeddings: list[Tensor] = []
        for layer in self.layers:
            features, embeddings, heatmap = layer(features, embeddings)
            heatmaps.append(heatmap)
            layer_embeddings.append(embeddings)
        return features, embeddings, heatmaps, layer_embeddings
