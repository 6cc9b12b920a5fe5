"""The optimizer every training task gets unless it builds its own."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def build_adamw(
    params: Iterable[Any], *, lr: float, weight_decay: float, fused: bool = True
) -> torch.optim.AdamW:
    """AdamW over ``params`` (tensors or param-group dicts), fused where PyTorch supports it.

    The fused kernel updates every tensor in one pass instead of a chain of multi-tensor ops;
    it is the same algorithm. On this project's CPU machine the AdamW step of the 24 M
    parameter demo model took 23-34 ms fused against 138-148 ms unfused. Devices or dtypes
    without a fused kernel fall back to the default implementation.
    """
    params = list(params)
    if fused:
        try:
            return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, TypeError):  # no fused kernel for these tensors / this torch
            pass
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


OPTIMIZERS = ("adamw", "lookahead_adamw")
LOOKAHEAD_K = 5  # catalyst's Lookahead defaults, used by the BiCoR-Seg authors
LOOKAHEAD_ALPHA = 0.5


def build_optimizer(
    kind: str, params: Iterable[Any], *, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """``"adamw"`` (:func:`build_adamw`), or ``"lookahead_adamw"``: Lookahead (k 5, alpha 0.5)
    over that AdamW with catalyst's phase (syncs after steps 1, 6, 11, ...), the BiCoR-Seg
    authors' optimizer (:class:`~btdnet.engine.lookahead.CatalystLookahead`)."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}; expected one of {OPTIMIZERS}")
    optimizer = build_adamw(params, lr=lr, weight_decay=weight_decay)
    if kind == "lookahead_adamw":
        from btdnet.engine.lookahead import CatalystLookahead

        return CatalystLookahead(optimizer, alpha=LOOKAHEAD_ALPHA, k=LOOKAHEAD_K)
    return optimizer
