"""Boundary F-score: how well a mask's outline follows the ground truth's (DAVIS's F measure).

IoU barely moves when an outline is a few pixels off on a large object; the boundary F-score
scores the outline itself. Per sample (Perazzi et al., CVPR 2016, the DAVIS benchmark's ``F``):

- the *boundary* of a mask is its pixels with at least one 4-neighbour outside it (the image's
  own edge is not a boundary: outside the image counts as more of the same pixel);
- a boundary pixel is *matched* when the other mask's boundary lies within ``r`` pixels of it
  (a disk of radius ``r``); ``r = ceil(0.008 * diagonal)`` as in DAVIS (4 px at 320x320,
  6 px at 480x480) unless given;
- precision ``P`` = matched predicted boundary / predicted boundary, recall ``R`` = matched
  ground-truth boundary / ground-truth boundary; ``F = 2PR / (P + R)`` (0 when both are 0).
  An empty boundary on one side gives that side's ratio 1 when the other is empty too, else 0.

:func:`boundary_counts` returns the four integer counts, so that processes can gather them
like the IoU statistics; :func:`boundary_f` turns them into the score.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DAVIS_TOLERANCE = 0.008
"""Matching distance as a share of the image diagonal (DAVIS's ``bound_th``)."""


def tolerance_pixels(height: int, width: int, share: float = DAVIS_TOLERANCE) -> int:
    """The matching radius in pixels for an image of ``height`` x ``width``."""
    return max(1, math.ceil(share * math.hypot(height, width)))


def mask_boundary(mask: torch.Tensor) -> torch.Tensor:
    """(..., H, W) bool mask -> (..., H, W) bool boundary (pixels with a 4-neighbour outside)."""
    m = mask.bool()
    padded = F.pad(m.float().reshape(-1, 1, *m.shape[-2:]), (1, 1, 1, 1), mode="replicate")
    padded = padded[:, 0] > 0  # (N, H+2, W+2)
    inside = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    return (m.reshape(-1, *m.shape[-2:]) & ~inside).reshape(m.shape)


def _dilate(boundary: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, H, W) bool -> (N, H, W) bool, dilated by a disk of ``radius`` pixels."""
    span = torch.arange(-radius, radius + 1, dtype=torch.float32)
    disk = (span[:, None] ** 2 + span[None, :] ** 2 <= radius**2).float()  # (2r+1, 2r+1)
    spread = F.conv2d(boundary.float()[:, None], disk[None, None], padding=radius)
    return spread[:, 0] > 0.5


def boundary_counts(
    pred: torch.Tensor, gt: torch.Tensor, radius: int | None = None
) -> torch.Tensor:
    """Matched and total boundary pixels of each prediction against its ground truth.

    Args:
        pred: (N, H, W) or (H, W) predicted masks (bool or 0/1).
        gt: ground-truth masks of the same shape.
        radius: matching distance in pixels (default: :func:`tolerance_pixels`).

    Returns:
        (N, 4) int64: matched predicted boundary, predicted boundary, matched ground-truth
        boundary, ground-truth boundary.
    """
    if pred.shape != gt.shape:
        raise ValueError(
            f"boundary_counts: shapes differ, {tuple(pred.shape)} vs {tuple(gt.shape)}"
        )
    height, width = pred.shape[-2:]
    r = tolerance_pixels(height, width) if radius is None else int(radius)
    p = mask_boundary(pred).reshape(-1, height, width)
    g = mask_boundary(gt).reshape(-1, height, width)
    p_hit = (p & _dilate(g, r)).flatten(1).sum(1)
    g_hit = (g & _dilate(p, r)).flatten(1).sum(1)
    counts = [p_hit, p.flatten(1).sum(1), g_hit, g.flatten(1).sum(1)]
    return torch.stack(counts, dim=1).long()  # (N, 4)


def boundary_f(p_hit: int, p_total: int, g_hit: int, g_total: int) -> float:
    """The boundary F-score in [0, 1] from :func:`boundary_counts`'s four numbers."""
    if p_total == 0 and g_total == 0:
        return 1.0
    precision = p_hit / p_total if p_total else 0.0
    recall = g_hit / g_total if g_total else 0.0
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)
