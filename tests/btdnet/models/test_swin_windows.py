"""Swin shifted windows the detection way (pad, then shift), against the paper's definition.

The reference below is written from the Swin paper (Liu et al. 2021, Sec. 3.2) and the
dense-prediction backbone's convention, independently of ``btdnet.models.swin_windows``: pad the
normalised map to a window multiple, roll the *padded* map by half a window, label the three
strips of each axis on the padded grid, partition into windows, let a token attend only to tokens
of its own region (bias -100 otherwise, as Swin does), attend with timm's own ``WindowAttention``
module of the block, merge, roll back, crop. Window rule: a stage that fits one window uses that
window and no shift; blocks alternate plain and shifted windows.
"""

from __future__ import annotations

import timm
import torch

from btdnet.models.image_encoder import ImageEncoder
from btdnet.models.swin_windows import PaddedShiftSwinBlock, use_padded_shift
from btdnet.models.variants import VARIANTS

SWIN_B = "swin_base_patch4_window12_384"


def _strip_labels(size: int, window: int, shift: int) -> torch.Tensor:
    """Region id of each row (or column) of the padded, rolled grid: 0, 1, 2 from the top."""
    labels = torch.zeros(size, dtype=torch.long)
    if shift:
        labels[size - window :] = 1
        labels[size - shift :] = 2
    return labels


def _reference_attention(block, x: torch.Tensor, window: int, shifted: bool) -> torch.Tensor:
    batch, height, width, channels = x.shape
    win_h, win_w = min(window, height), min(window, width)
    shift_h = 0 if height <= window or not shifted else window // 2
    shift_w = 0 if width <= window or not shifted else window // 2
    pad_h, pad_w = -height % win_h, -width % win_w
    y = torch.nn.functional.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = height + pad_h, width + pad_w
    y = torch.roll(y, shifts=(-shift_h, -shift_w), dims=(1, 2))
    region = _strip_labels(hp, win_h, shift_h)[:, None] * 3 + _strip_labels(wp, win_w, shift_w)
    # windows in row-major order: (B, nh, win_h, nw, win_w, C) -> (B*nh*nw, win_h*win_w, C)
    tiles = y.view(batch, hp // win_h, win_h, wp // win_w, win_w, channels)
    tiles = tiles.permute(0, 1, 3, 2, 4, 5).reshape(-1, win_h * win_w, channels)
    region = region.view(hp // win_h, win_h, wp // win_w, win_w).permute(0, 2, 1, 3)
    region = region.reshape(-1, win_h * win_w)  # (nW, N)
    mask = (region[:, :, None] != region[:, None, :]).to(x.dtype) * -100.0  # (nW, N, N)
    mask = mask if (shift_h or shift_w) else None
    out = block.attn(tiles, mask=mask)  # (B*nW, N, C)
    out = out.view(batch, hp // win_h, wp // win_w, win_h, win_w, channels)
    out = out.permute(0, 1, 3, 2, 4, 5).reshape(batch, hp, wp, channels)
    out = torch.roll(out, shifts=(shift_h, shift_w), dims=(1, 2))
    return out[:, :height, :width]


def _reference_stages(encoder: ImageEncoder, image: torch.Tensor, window: int) -> list:
    swin = encoder.backbone
    x = swin.patch_embed(image)  # (B, H/4, W/4, C)
    outputs = []
    for index, layer in enumerate(swin.layers):
        x = layer.downsample(x)
        for depth, block in enumerate(layer.blocks):  # every second block is shifted
            x = x + _reference_attention(block, block.norm1(x), window, depth % 2 == 1)
            x = x + block.mlp(block.norm2(x))
        y = swin.norm(x) if index == len(swin.layers) - 1 else x
        outputs.append(y.permute(0, 3, 1, 2))  # (B, C, h, w)
    return outputs


def _assert_stages_match(encoder: ImageEncoder, size: int, window: int) -> list[float]:
    torch.manual_seed(0)
    image = torch.randn(1, 3, size, size)
    with torch.no_grad():
        ours = encoder(image)
        reference = _reference_stages(encoder, image, window)
    for stage, (a, b) in enumerate(zip(ours, reference)):
        assert a.shape == b.shape, stage
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=f"stage {stage + 1}")
    return [float((a - b).abs().max()) for a, b in zip(ours, reference)]


def test_every_block_is_padded_shift_with_timm_names() -> None:
    encoder = ImageEncoder(SWIN_B, 96, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2))
    blocks = [
        m
        for m in encoder.modules()
        if isinstance(m, timm.models.swin_transformer.SwinTransformerBlock)
    ]
    assert len(blocks) == 8 and all(type(b) is PaddedShiftSwinBlock for b in blocks)
    plain = timm.create_model(
        SWIN_B,
        img_size=96,
        num_classes=0,
        embed_dim=16,
        depths=(2, 2, 2, 2),
        num_heads=(1, 1, 2, 2),
    )
    assert list(encoder.backbone.state_dict()) == list(plain.state_dict())
    assert use_padded_shift(encoder) == 0  # already converted: nothing left to do


def test_odd_small_config_matches_reference_at_every_stage() -> None:
    # 160 px, window 3: stages 40, 20, 10, 5 -- none a window multiple, all shifted.
    encoder = ImageEncoder(
        SWIN_B, 160, embed_dim=12, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 3), window_size=3
    ).eval()
    _assert_stages_match(encoder, 160, 3)


def test_odd_config_differs_from_timm_roll_then_pad() -> None:
    """The check can fail: timm's own block (shift, then pad) is not the reference at stage 4."""
    kwargs = dict(embed_dim=12, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 3), window_size=4)
    encoder = ImageEncoder(SWIN_B, 160, **kwargs).eval()  # stage 4: 5x5, window 4, padded to 8
    timm_model = timm.create_model(SWIN_B, img_size=160, num_classes=0, **kwargs).eval()
    timm_model.load_state_dict(encoder.backbone.state_dict())
    image = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        ours = encoder(image)
        theirs = timm_model.forward_intermediates(image, norm=True, intermediates_only=True)
        reference = _reference_stages(encoder, image, 4)
    torch.testing.assert_close(ours[3], reference[3], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours[0], theirs[0])  # 40x40: a window multiple, no difference
    assert float((theirs[3] - reference[3]).abs().max()) > 1e-2


def test_paper_variant_at_480_matches_reference_at_every_stage() -> None:
    # The paper variant's Swin-B (width 128, heads 4-8-16-32, window 12) at 480: stages 120, 60,
    # 30, 15 (stages 3-4 padded, stage 4 shifted). Two blocks a stage (one plain, one shifted)
    # instead of 2-2-18-2: the extra blocks repeat the same computation and would cost ~40 s.
    paper = VARIANTS["paper"]
    window = paper["image_encoder_kwargs"]["window_size"]
    encoder = ImageEncoder(
        paper["image_encoder"], paper["image_size"], window_size=window, depths=(2, 2, 2, 2)
    ).eval()
    assert encoder.channels == [128, 256, 512, 1024]
    _assert_stages_match(encoder, paper["image_size"], window)


def test_384_equals_timm_classification_model() -> None:
    # 384 with window 12: stages 96, 48, 24, 12; stage 4 fits one window: no shift, as timm.
    kwargs = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2), window_size=12)
    encoder = ImageEncoder(SWIN_B, 384, **kwargs).eval()
    timm_model = timm.create_model(SWIN_B, img_size=384, num_classes=0, **kwargs).eval()
    timm_model.load_state_dict(encoder.backbone.state_dict())
    image = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        ours = encoder(image)
        theirs = timm_model.forward_intermediates(image, norm=True, intermediates_only=True)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
