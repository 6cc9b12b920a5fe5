"""Shifted-window attention as the detection/segmentation Swin computes it (pad, then shift).

timm's ``SwinTransformerBlock`` (like Microsoft's classification Swin) rolls the feature map by
half a window, *then* pads it to a window multiple, and builds the region mask on the padded
grid. When a stage is not a window multiple (480 px with window 12: stage 3 is 30x30, stage 4 is
15x15) the roll wraps the real tokens around the *unpadded* map, so some windows join tokens from
opposite edges of the image that the mask does not separate (at stage 4, token (0, 0) attends to
rows 6-14).

The Swin used for dense prediction, which LAVT, RMSIN and their successors fine-tune
(Swin-Transformer-Object-Detection / Semantic-Segmentation's backbone), pads first and rolls the
*padded* map, so every wrapped-around strip lands in its own mask region and no real token sees
a token from the other side of the image. ``PaddedShiftSwinBlock`` computes that; it adds no
parameter or buffer, so timm's parameter names, official/timm checkpoints and the window/shift
rule of timm (a stage that fits one window uses that window and no shift) are unchanged. At
sizes where every stage is a window multiple (224 with window 7, 384 with window 12) it is
exactly timm's computation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformerBlock, window_partition, window_reverse
from torch import nn


class PaddedShiftSwinBlock(SwinTransformerBlock):
    """timm's Swin block with detection-style padding: pad to a window multiple, then shift.

    Same constructor, parameters and buffers as ``SwinTransformerBlock``; only the window
    attention step differs. The region mask is timm's own (``get_attn_mask``), which is already
    built on the padded grid; what changes is that the roll now acts on that grid too.
    """

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        _, height, width, channels = x.shape  # (B, H, W, C), already normalised
        win_h, win_w = self.window_size
        pad_h = (win_h - height % win_h) % win_h
        pad_w = (win_w - width % win_w) % win_w
        padded = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # (B, Hp, Wp, C), zeros bottom/right
        _, padded_h, padded_w, _ = padded.shape

        has_shift = any(self.shift_size)
        if has_shift:
            shift = (-self.shift_size[0], -self.shift_size[1])
            padded = torch.roll(padded, shifts=shift, dims=(1, 2))

        windows = window_partition(padded, self.window_size)  # (B*nW, wh, ww, C)
        windows = windows.view(-1, self.window_area, channels)  # (B*nW, wh*ww, C)
        mask = self.get_attn_mask(padded) if self.dynamic_mask else self.attn_mask
        attended = self.attn(windows, mask=mask)  # (B*nW, wh*ww, C)
        attended = attended.view(-1, win_h, win_w, channels)  # (B*nW, wh, ww, C)
        padded = window_reverse(attended, self.window_size, padded_h, padded_w)  # (B, Hp, Wp, C)

        if has_shift:
            padded = torch.roll(padded, shifts=self.shift_size, dims=(1, 2))
        return padded[:, :height, :width, :].contiguous()  # (B, H, W, C)


def use_padded_shift(module: nn.Module) -> int:
    """Turn every timm ``SwinTransformerBlock`` inside ``module`` into a ``PaddedShiftSwinBlock``.

    The blocks keep their parameters, buffers and names (the subclass adds no state, only the
    attention step differs), so this can run before or after weights are loaded. timm itself is
    not modified. Returns the number of blocks converted; a block of another subclass (someone
    else's variant) is refused rather than silently changed.
    """
    converted = 0
    for name, block in module.named_modules():
        if type(block) is SwinTransformerBlock:
            block.__class__ = PaddedShiftSwinBlock
            converted += 1
        elif isinstance(block, SwinTransformerBlock) and not isinstance(
            block, PaddedShiftSwinBlock
        ):
            raise TypeError(f"{name}: {type(block).__name__} is not timm's SwinTransformerBlock")
    return converted
