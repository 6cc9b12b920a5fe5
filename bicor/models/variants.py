"""Named BiCoR-Seg sizes. Each variant is a plain dict of :class:`BiCoRConfig` fields.

- ``swin`` (default): Swin-B encoder (shared with the referring path), D = 256, L = 2.
- ``paper``: ConvNeXt-B as in the paper, D = 256, L = 2.
- ``small``: Swin-T, D = 128, L = 2.
- ``demo``: a narrow ResNet-10 (1.4 M parameters) trained from scratch on CPU for the
  synthetic set.
- ``tiny``: the smallest working model, for tests.

Dataset settings (``num_classes``, ``num_layers`` = 3 for Potsdam, ``topk_ratio`` = 0.02 for
LoveDA) come from the training config as overrides.
"""

from __future__ import annotations

from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "swin": {
        "encoder_name": "swin_base_patch4_window12_384",
        "img_size": 512,
        "dim": 256,
        "num_layers": 2,
        "head_channels": (128, 64),
        "aux_channels": 64,
    },
    "paper": {
        "encoder_name": "convnext_base",
        "img_size": 512,
        "dim": 256,
        "num_layers": 2,
        "head_channels": (128, 64),
        "aux_channels": 64,
    },
    "small": {
        "encoder_name": "swin_tiny_patch4_window7_224",
        "img_size": 512,
        "dim": 128,
        "num_layers": 2,
        "head_channels": (64, 32),
        "aux_channels": 32,
    },
    "demo": {
        "encoder_name": "resnet10t",
        "encoder_kwargs": {"channels": [32, 64, 128, 256], "stem_width": 16},
        "img_size": 128,
        "dim": 64,
        "num_layers": 2,
        "head_channels": (16, 8),
        "aux_channels": 16,
    },
    "tiny": {
        "encoder_name": "resnet10t",
        "encoder_kwargs": {"channels": [8, 16, 32, 64], "stem_width": 8},
        "img_size": 64,
        "dim": 32,
        "num_layers": 2,
        "min_topk": 4,
        "head_channels": (16, 8),
        "aux_channels": 8,
    },
}
DEFAULT_VARIANT = "swin"
