"""Optimizer parameter groups of both models: no weight decay on norms, biases and position
tables; a separate learning-rate factor for one part (BTDNet's text encoder, BiCoR-Seg's image
encoder)."""

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


def no_weight_decay(
    name: str, param: nn.Parameter, names: tuple[str, ...] = NO_DECAY_NAMES
) -> bool:
    """True for norms and biases (1-D or scalar tensors) and names holding one of ``names``."""
    return param.ndim <= 1 or any(fragment in name for fragment in names)


def build_param_groups(
    model: nn.Module,
    *,
    weight_decay: float,
    lr: float | None = None,
    scaled_prefix: str = "text_encoder.",
    lr_factor: float = 1.0,
    no_decay_names: tuple[str, ...] = NO_DECAY_NAMES,
    exempt_from_decay: bool = True,
) -> list[dict[str, Any]]:
    """Split trainable parameters into up to four AdamW groups.

    Parameters whose name starts with ``scaled_prefix`` (BTDNet's text encoder, BiCoR-Seg's
    image encoder) train at ``lr * lr_factor``; norms, biases and ``no_decay_names`` get no
    weight decay (with ``exempt_from_decay``; without it every parameter decays). Every group
    carries ``name`` and ``weight_decay``, and ``lr`` when ``lr`` is given. Empty groups are
    left out.
    """
    part = scaled_prefix.split(".")[0].removesuffix("_encoder") or "scaled"
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        exempt = exempt_from_decay and no_weight_decay(name, param, no_decay_names)
        key = (name.startswith(scaled_prefix), exempt)
        buckets.setdefault(key, []).append(param)
    groups = []
    for (scaled, no_decay), params in sorted(buckets.items()):
        group: dict[str, Any] = {
            "name": f"{part if scaled else 'model'}_{'no_decay' if no_decay else 'decay'}",
            "params": params,
            "weight_decay": 0.0 if no_decay else weight_decay,
        }
        if lr is not None:
            group["lr"] = lr * (lr_factor if scaled else 1.0)
        groups.append(group)
    return groups
