"""HBIS: Heatmap-driven Bidirectional Information Synergy (BiCoR-Seg, method.md section 2).

One layer exchanges information between the pixel features F (B, D, H, W) (stride 4) and the
class embeddings E (B, K, D):

1. heatmap logits ``A[b, k, p] = <Linear(LN(E))[b, k], LN(F)[b, :, p]> / sqrt(D)``;
2. features -> embeddings: a 1x1 projection of the features is pooled with each class's sigmoid
   heatmap, restricted to its top-k pixels (weights renormalised); the pooled context updates
   the embedding through a gate: ``E' = g * MLP(ctx) + (1 - g) * E``,
   ``g = sigmoid(MLP([E, ctx]))``;
3. embeddings -> features: every class gives a FiLM (scale ``1 + tanh(Linear(E'))``, shift
   ``Linear(E')``); the per-pixel softmax-over-classes heatmap mixes them; the modulated
   features are projected and blended: ``F' = 0.5 F + 0.5 F_new``;
4. the heatmap logits (B, K, H, W) are returned as a low-resolution prediction.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))


def topk_count(num_pixels: int, topk_ratio: float | None, min_topk: int) -> int:
    """Pixels pooled per class: all when ``topk_ratio`` is None, else
    ``min(HW, max(min_topk, ceil(ratio * HW)))``."""
    if topk_ratio is None:
        return num_pixels
    return min(num_pixels, max(min_topk, math.ceil(topk_ratio * num_pixels)))


class HBISLayer(nn.Module):
    """One HBIS layer.

    Args:
        dim: D, the channels of the features and of the class embeddings.
        topk_ratio: share of pixels pooled per class (None = all pixels).
        min_topk: lower bound of the pooled pixel count when ``topk_ratio`` is set.
    """

    def __init__(self, *, dim: int, topk_ratio: float | None = None, min_topk: int = 64) -> None:
        super().__init__()
        if topk_ratio is not None and not 0.0 < topk_ratio <= 1.0:
            raise ValueError(f"topk_ratio must be in (0, 1] or None, got {topk_ratio}")
        self.dim = dim
        self.topk_ratio = topk_ratio
        self.min_topk = min_topk
        self.feature_norm = nn.LayerNorm(dim)
        self.embedding_norm = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)  # the 1x1 conv projection, applied to (B, HW, D)
        self.candidate = mlp(dim, dim, dim)
        self.gate = mlp(2 * dim, dim, dim)
        self.film_scale = nn.Linear(dim, dim)
        self.film_shift = nn.Linear(dim, dim)
        self.output = nn.Linear(dim, dim)
        nn.init.zeros_(self.film_scale.weight)
        nn.init.zeros_(self.film_scale.bias)
        nn.init.zeros_(self.film_shift.weight)
        nn.init.zeros_(self.film_shift.bias)

    def pooling_weights(self, heatmap: Tensor) -> Tensor:
        """Sigmoid heatmap kept on each class's top-k pixels, renormalised to sum 1.

        ``heatmap`` (B, K, HW) logits -> weights (B, K, HW).
        """
        weights = heatmap.sigmoid()
        k = topk_count(heatmap.shape[-1], self.topk_ratio, self.min_topk)
        if k < heatmap.shape[-1]:
            index = heatmap.detach().topk(k, dim=-1).indices  # (B, K, k)
            keep = torch.zeros_like(weights).scatter_(-1, index, 1.0)
            weights = weights * keep
        return weights / (weights.sum(dim=-1, keepdim=True) + 1e-6)

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
        tokens = features.flatten(2).transpose(1, 2)  # (B, HW, D)
        normed = self.feature_norm(tokens)
        queries = self.query(self.embedding_norm(embeddings))  # (B, K, D)
        heatmap = queries @ normed.transpose(1, 2) / math.sqrt(d)  # (B, K, HW)

        # features -> embeddings
        weights = self.pooling_weights(heatmap)  # (B, K, HW)
        context = weights @ self.value(normed)  # (B, K, D)
        gate = self.gate(torch.cat([embeddings, context], dim=-1)).sigmoid()
        new_embeddings = gate * self.candidate(context) + (1.0 - gate) * embeddings

        # embeddings -> features
        mix = heatmap.softmax(dim=1).transpose(1, 2)  # (B, HW, K)
        scale = 1.0 + torch.tanh(self.film_scale(new_embeddings))  # (B, K, D)
        shift = self.film_shift(new_embeddings)  # (B, K, D)
        modulated = normed * (mix @ scale) + mix @ shift  # (B, HW, D)
        new_tokens = self.output(modulated)  # (B, HW, D)
        new_features = new_tokens.transpose(1, 2).reshape(b, d, h, w)  # (B, D, H, W)
        blended = 0.5 * features + 0.5 * new_features
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
