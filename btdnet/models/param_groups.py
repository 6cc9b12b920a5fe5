"""Optimizer parameter groups: no weight decay on norms, biases and position tables; a separate
learning-rate factor for the text encoder (all of whose layers train)."""

from __future__ import annotations

from typing import Any

from torch import nn

# Parameter-name fragments that are position / token-type tables or learned tokens.
NO_DECAY_NAMES = (
    "relative_position_bias_table",
    "absolute_pos_embed",
    "pos_embed",
    "position_embeddings",
    "token_type_embeddings",
    "mask_token",
)


def no_weight_decay(name: str, param: nn.Parameter) -> bool:
    """True for norms and biases (1-D or scalar tensors) and position/token-type tables."""
    return param.ndim <= 1 or any(fragment in name for fragment in NO_DECAY_NAMES)


def build_param_groups(
    model: nn.Module,
    *,
    weight_decay: float,
    text_lr_factor: float = 1.0,
    lr: float | None = None,
    text_prefix: str = "text_encoder.",
) -> list[dict[str, Any]]:
    """Split trainable parameters into up to four groups.

    Every group carries ``name``, ``weight_decay`` and ``lr_factor`` (1 or ``text_lr_factor``);
    with ``lr`` given it also carries ``lr = lr * lr_factor``. Empty groups are left out.
    """
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (name.startswith(text_prefix), no_weight_decay(name, param))
        buckets.setdefault(key, []).append(param)
    groups = []
    for (is_text, no_decay), params in sorted(buckets.items()):
        factor = text_lr_factor if is_text else 1.0
        group: dict[str, Any] = {
            "name": f"{'text' if is_text else 'model'}_{'no_decay' if no_decay else 'decay'}",
            "params": params,
            "weight_decay": 0.0 if no_decay else weight_decay,
            "lr_factor": factor,
        }
        if lr is not None:
            group["lr"] = lr * factor
        groups.append(group)
    return groups
