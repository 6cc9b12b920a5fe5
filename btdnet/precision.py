"""One vocabulary for mixed precision: training, benchmark, prediction and profiling.

``no`` (float32), ``bf16``, ``fp16`` (accelerate's names) and ``auto`` (bf16 where the device
computes it natively, else no; see :func:`btdnet.engine.accelerator.resolve_mixed_precision`).
``none``, ``None`` and YAML's bare ``no`` (read as ``False``) are accepted and mean ``no``.
Kept free of torch, so that command lines can use it before importing anything heavy.
"""

from __future__ import annotations

from typing import Any

MIXED_PRECISION_CHOICES: tuple[str, ...] = ("auto", "no", "bf16", "fp16")


def canonical_precision(value: Any) -> str:
    """The vocabulary's word for ``value``; ``ValueError`` (naming the choices) otherwise."""
    if value is None or value is False or value == "none":
        return "no"
    if value not in MIXED_PRECISION_CHOICES:
        raise ValueError(
            f"mixed precision {value!r} is not one of {', '.join(MIXED_PRECISION_CHOICES)}"
        )
    return str(value)
