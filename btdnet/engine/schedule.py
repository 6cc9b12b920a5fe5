"""Learning-rate schedules as multiplicative factors for ``LambdaLR``."""

from __future__ import annotations

import math
from functools import partial

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_poly_factor(step: int, *, warmup_steps: int, total_steps: int, power: float) -> float:
    """Linear warm-up to 1, then ``(1 - progress) ** power`` down to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return (1.0 - progress) ** power


def warmup_cosine_factor(
    step: int, *, warmup_steps: int, total_steps: int, min_factor: float
) -> float:
    """Linear warm-up to 1, then cosine from 1 down to ``min_factor`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


SCHEDULES: tuple[str, ...] = ("poly", "cosine")


def epoch_cosine_factor(
    step: int, *, warmup_steps: int, steps_per_epoch: int, epochs: int, min_factor: float
) -> float:
    """Cosine stepped once per epoch (``CosineAnnealingLR(T_max=epochs)`` stepped at each epoch's
    end): the factor of epoch ``step // steps_per_epoch``, after an optional per-step warm-up."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    return warmup_cosine_factor(
        step // max(1, steps_per_epoch), warmup_steps=0, total_steps=epochs, min_factor=min_factor
    )


def build_scheduler(
    optimizer: Optimizer,
    *,
    kind: str,
    total_steps: int,
    warmup_steps: int,
    power: float = 0.9,
    min_lr: float = 0.0,
    base_lr: float = 1.0,
    steps_per_epoch: int | None = None,
) -> LambdaLR:
    """``kind`` is ``"poly"`` (the referring recipe) or ``"cosine"`` (the closed-set recipe).

    With ``steps_per_epoch`` a cosine schedule changes only at epoch boundaries (the authors'
    closed-set recipe); ``total_steps`` must then be a whole number of epochs.
    """
    if kind == "poly":
        fn = partial(
            warmup_poly_factor, warmup_steps=warmup_steps, total_steps=total_steps, power=power
        )
    elif kind == "cosine" and steps_per_epoch:
        fn = partial(
            epoch_cosine_factor,
            warmup_steps=warmup_steps,
            steps_per_epoch=steps_per_epoch,
            epochs=max(1, total_steps // steps_per_epoch),
            min_factor=min_lr / base_lr if base_lr > 0 else 0.0,
        )
    elif kind == "cosine":
        fn = partial(
            warmup_cosine_factor,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
            min_factor=min_lr / base_lr if base_lr > 0 else 0.0,
        )
    else:
        raise ValueError(f"unknown schedule {kind!r}; expected 'poly' or 'cosine'")
    return LambdaLR(optimizer, fn)
