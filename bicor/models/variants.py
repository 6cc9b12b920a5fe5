"""Named BiCoR-Seg sizes. Each variant is a plain dict of :class:`BiCoRConfig` fields.

- ``paper`` (default): the authors' model, ConvNeXt-B with stochastic depth 0.5 (ImageNet-1k
  weights from torchvision's ``convnext_base`` file, mapped onto timm's layout on load),
  D = 256, L = 2.
- ``swin``: Swin-B encoder (shared with the referring path), D = 256, L = 2.
- ``small``: Swin-T, D = 128, L = 2.
- ``demo``: a narrow ResNet-10 trained from scratch on CPU for the synthetic set, D = 64.
- ``tiny``: the smallest working model, for tests.

Dataset settings (``num_classes``, ``num_layers`` = 3 for Potsdam, ``topk_ratio`` = 0.02 and
``final_fisher_weight`` = 1 for LoveDA) come from the training config as overrides.
"""

from __future__ import annotations

from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {
        "image_encoder": "convnext_base",
        "image_encoder_kwargs": {"drop_path_rate": 0.5},
        "image_size": 512,
        "dim": 256,
        "num_layers": 2,
    },
    "swin": {
        "image_encoder": "swin_base_patch4_window12_384",
        "image_encoder_kwargs": {},
        "image_size": 512,
        "dim": 256,
        "num_layers": 2,
    },
    "small": {
        "image_encoder": "swin_tiny_patch4_window7_224",
        "image_encoder_kwargs": {},
        "image_size": 512,
        "dim": 128,
        "num_layers": 2,
    },
    "demo": {
        "image_encoder": "resnet10t",
        "image_encoder_kwargs": {"channels": [32, 64, 128, 256], "stem_width": 16},
        "image_size": 128,
        "dim": 64,
        "num_layers": 2,
    },
    "tiny": {
        "image_encoder": "resnet10t",
        "image_encoder_kwargs": {"channels": [8, 16, 32, 64], "stem_width": 8},
        "image_size": 64,
        "dim": 32,
        "num_layers": 2,
        "min_topk": 4,
    },
}
DEFAULT_VARIANT = "paper"
