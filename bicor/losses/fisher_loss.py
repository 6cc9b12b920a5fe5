"""Cross-layer Fisher discriminative loss on class embeddings (BiCoR-Seg, method.md section 2).

For one layer with embeddings ``E`` of layout (B, N, C) (batch, classes, channels):

- class centre ``mu_n = mean_b E[b, n]`` (mean over the batch),
- within-class scatter ``S_w = mean_{b, n} ||E[b, n] - mu_n||^2``,
- between-class scatter ``S_b = mean_{n < m} ||mu_n - mu_m||^2``, clamped to at least 1e-4,
- layer loss ``S_w / (S_b + 1e-6)``.

``||.||^2`` is the squared Euclidean distance (summed over C). The total is the weighted sum of
the per-layer ratios. With a batch of one, every embedding is its own centre, so ``S_w = 0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

SB_MIN = 1e-4
EPS = 1e-6


def fisher_layer_ratio(embeddings: Tensor) -> Tensor:
    """Fisher ratio ``S_w / (max(S_b, 1e-4) + 1e-6)`` of one layer's (B, N, C) embeddings."""
    if embeddings.dim() != 3:
        raise ValueError(
            f"fisher loss expects (B, N, C) embeddings, got shape {tuple(embeddings.shape)}"
        )
    num_classes = embeddings.shape[1]
    if num_classes < 2:
        raise ValueError("fisher loss needs at least two classes (N >= 2)")
    embeddings = embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
    centres = embeddings.mean(dim=0)  # (N, C)
    within = (embeddings - centres.unsqueeze(0)).pow(2).sum(dim=-1).mean()
    pair_dist = (centres.unsqueeze(0) - centres.unsqueeze(1)).pow(2).sum(dim=-1)  # (N, N)
    upper = torch.triu_indices(num_classes, num_classes, offset=1, device=embeddings.device)
    between = pair_dist[upper[0], upper[1]].mean().clamp_min(SB_MIN)
    return within / (between + EPS)


def fisher_discriminative_loss(
    layer_embeddings: Sequence[Tensor], weights: Sequence[float] | None = None
) -> Tensor:
    """Weighted sum over layers of the Fisher ratio.

    Args:
        layer_embeddings: one (B, N, C) tensor per layer (B images, N classes, C channels).
        weights: one weight per layer; ``None`` weights every layer by 1.

    Returns:
        A scalar tensor (float32).
    """
    layers = list(layer_embeddings)
    if not layers:
        raise ValueError("fisher_discriminative_loss needs at least one layer of embeddings")
    if weights is None:
        weights = [1.0] * len(layers)
    weights = list(weights)
    if len(weights) != len(layers):
        raise ValueError(f"got {len(weights)} weights for {len(layers)} layers")
    total = layers[0].new_zeros((), dtype=torch.float32)
    for weight, embeddings in zip(weights, layers):
        total = total + float(weight) * fisher_layer_ratio(embeddings)
    return total
