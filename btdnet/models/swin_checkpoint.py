"""Swin weights from Microsoft's official releases (or timm's files) into timm's Swin layout.

The official ``swin_base_patch4_window12_384_22k.pth`` used by the LAVT/RMSIN peers wraps its
tensors in ``{"model": ...}`` and differs from timm's layout in three ways:

- the patch-merging (``downsample``) layer sits at the *end* of stage ``i`` there and at the
  *start* of stage ``i + 1`` in timm: ``layers.0.downsample.*`` becomes ``layers.1.downsample.*``;
- the classifier is ``head.*`` there and ``head.fc.*`` in timm;
- it stores the non-persistent buffers ``relative_position_index`` and ``attn_mask``.

timm's own ``checkpoint_filter_fn`` performs exactly this conversion (and resizes relative position
tables and the patch embedding when the window or patch size differs), so it is used as is; this
module only unwraps, detects the layout and keeps the call in one place.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from timm.models.swin_transformer import SwinTransformer, checkpoint_filter_fn


def convert_swin_state_dict(
    state: Mapping[str, torch.Tensor], model: SwinTransformer
) -> dict[str, torch.Tensor]:
    """Return ``state`` in the key layout of ``model`` (a timm ``SwinTransformer``).

    Works for official Microsoft files and timm's own files alike; buffers that timm does not
    persist are dropped and relative position tables are resized to ``model``'s windows.
    """
    return checkpoint_filter_fn(dict(state), model)
