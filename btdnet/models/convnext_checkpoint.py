"""torchvision ConvNeXt weights -> timm ConvNeXt names.

The BiCoR-Seg authors train torchvision's ``convnext_base`` with its ImageNet-1k weights; the
toolkit builds the same network with timm (identical blocks: 7x7 depth-wise conv, LayerNorm,
MLP x4, layer scale, stochastic depth linearly spaced over all blocks). torchvision names:

- ``features.0.{0,1}``: stem conv and LayerNorm2d -> ``stem.{0,1}``;
- ``features.{2i+1}.{j}``: block j of stage i, with ``block.0`` (dw conv), ``block.2`` (norm),
  ``block.3``/``block.5`` (MLP) and ``layer_scale`` (C, 1, 1) -> ``stages.{i}.blocks.{j}``
  ``conv_dw``/``norm``/``mlp.fc1``/``mlp.fc2`` and ``gamma`` (C,);
- ``features.{2i}.{0,1}`` (i = 1, 2, 3): down-sampling norm and conv ->
  ``stages.{i}.downsample.{0,1}``;
- ``classifier.*`` (the ImageNet head) is dropped.
"""

from __future__ import annotations

import re

import torch

BLOCK_PARTS = {"block.0": "conv_dw", "block.2": "norm", "block.3": "mlp.fc1", "block.5": "mlp.fc2"}
_BLOCK = re.compile(r"features\.(\d+)\.(\d+)\.(block\.\d|layer_scale)(.*)")
_DOWNSAMPLE = re.compile(r"features\.(\d+)\.([01])\.(weight|bias)")
_STEM = re.compile(r"features\.0\.([01])\.(weight|bias)")


def is_torchvision_convnext(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` has torchvision's ConvNeXt layout (``features.0.0.weight`` stem)."""
    return "features.0.0.weight" in state and any(
        k.startswith("features.1.0.block.") for k in state
    )


def _rename(key: str) -> str | None:
    """timm name of one torchvision key; None for the dropped ImageNet classifier."""
    if key.startswith("classifier."):
        return None
    match = _STEM.fullmatch(key)
    if match:
        return f"stem.{match.group(1)}.{match.group(2)}"
    match = _BLOCK.fullmatch(key)
    if match:
        feature, block, part, rest = match.groups()
        if int(feature) % 2 != 1:
            raise ValueError(f"{key}: a block outside the stages")
        stage = (int(feature) - 1) // 2
        name = "gamma" if part == "layer_scale" else BLOCK_PARTS.get(part)
        if name is None:
            raise ValueError(f"{key}: unknown ConvNeXt block part {part!r}")
        return f"stages.{stage}.blocks.{block}.{name}{rest}"
    match = _DOWNSAMPLE.fullmatch(key)
    if match and int(match.group(1)) % 2 == 0:
        stage = int(match.group(1)) // 2
        return f"stages.{stage}.downsample.{match.group(2)}.{match.group(3)}"
    raise ValueError(f"{key}: not a torchvision ConvNeXt key")


def convert_torchvision_convnext(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a torchvision ConvNeXt state dict to timm's ConvNeXt names (classifier dropped).

    Raises:
        ValueError: a key that is not part of torchvision's ConvNeXt.
    """
    converted: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = _rename(key)
        if name is None:
            continue
        converted[name] = value.reshape(-1) if name.endswith(".gamma") else value
    return converted
