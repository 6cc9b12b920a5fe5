"""The named variants are the architectures their table documents, and BSC refines the words
at every stage that has a next one (language <- vision, stage by stage)."""

from __future__ import annotations

import pytest
import torch
from timm.models.swin_transformer import SwinTransformerBlock

from btdnet.models import build_model

# The table of btdnet/models/variants.py (and README), written out independently: input size,
# Swin widths per stage, blocks per stage, attention window; text encoder width, depth and MLP
# width (all-MiniLM-L6-v2: 384 / 6 / 1536; bert-base-uncased: 768 / 12 / 3072).
DOCUMENTED = {
    "tiny": (96, [16, 32, 64, 128], [1, 1, 1, 1], 3, (32, 2, 64)),
    "demo": (128, [32, 64, 128, 256], [1, 1, 2, 1], 4, (384, 6, 1536)),
    "small": (480, [96, 192, 384, 768], [2, 2, 6, 2], 7, (384, 6, 1536)),  # Swin-T + MiniLM
    "paper": (480, [128, 256, 512, 1024], [2, 2, 18, 2], 12, (768, 12, 3072)),  # Swin-B + BERT
}
# attention heads per stage (Swin-T 3-6-12-24 and Swin-B 4-8-16-32, as in the Swin paper)
# BSC correlation width and decoder width
WIDTHS = {"tiny": (16, 16), "demo": (32, 32), "small": (64, 64), "paper": (128, 64)}
HEADS = {
    "tiny": [1, 1, 2, 2],
    "demo": [1, 2, 4, 8],
    "small": [3, 6, 12, 24],
    "paper": [4, 8, 16, 32],
}


def _swin_blocks(model) -> list[SwinTransformerBlock]:
    return [m for m in model.image_encoder.modules() if isinstance(m, SwinTransformerBlock)]


@pytest.mark.parametrize("variant", list(DOCUMENTED))
def test_variant_is_the_documented_architecture(variant: str) -> None:
    size, widths, depths, window, text_shape = DOCUMENTED[variant]
    model = build_model(variant, pretrained=False, training=False)
    assert model.config.image_size == size
    assert list(model.image_encoder.channels) == widths
    assert list(model.image_encoder.strides) == [4, 8, 16, 32]
    blocks = _swin_blocks(model)
    per_stage = [sum(1 for b in blocks if b.dim == width) for width in widths]
    assert per_stage == depths
    fusion_dim, decoder_dim = WIDTHS[variant]
    assert {f.dim for f in model.fusions} == {fusion_dim}
    assert model.decoder.target_head.in_channels == decoder_dim
    heads = [{b.attn.num_heads for b in blocks if b.dim == width} for width in widths]
    assert heads == [{h} for h in HEADS[variant]]
    # the window is the configured one wherever the stage is at least that large
    side = [size // stride for stride in (4, 8, 16, 32)]
    for block in blocks:
        stage_side = side[widths.index(block.dim)]
        assert block.window_size == (min(window, stage_side),) * 2
    text = model.text_encoder.model.config
    assert model.text_encoder.hidden_size == text.hidden_size
    assert (text.hidden_size, text.num_hidden_layers, text.intermediate_size) == text_shape


def _words_entering_each_stage(model, pixel_values, input_ids, attention_mask) -> list:
    seen: list[torch.Tensor] = []
    hooks = [
        fusion.register_forward_hook(lambda _m, args, _o: seen.append(args[1].detach().clone()))
        for fusion in model.fusions
    ]
    try:
        with torch.no_grad():
            model(pixel_values, input_ids, attention_mask)
    finally:
        for hook in hooks:
            hook.remove()
    return seen  # one (B, T, D) tensor per stage


@pytest.mark.parametrize("bidirectional", [True, False])
def test_words_are_refined_by_the_image_at_every_stage_but_the_last(bidirectional: bool) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, training=False, use_bsc=bidirectional).eval()
    size = model.config.image_size
    ids = torch.tensor([[2, 7, 9, 4, 3]])
    mask = torch.ones_like(ids)
    first = _words_entering_each_stage(model, torch.randn(1, 3, size, size), ids, mask)
    second = _words_entering_each_stage(model, torch.randn(1, 3, size, size), ids, mask)
    assert len(first) == len(second) == 4
    # stage 0 receives the text encoder's words: the same sentence, the same words
    assert torch.equal(first[0], second[0])
    for stage in (1, 2, 3):
        differ = not torch.allclose(first[stage], second[stage])
        # BSC: each stage's words were updated from the previous stage's pixels; one-way: never
        assert differ == bidirectional, f"stage {stage}"
    # the last stage has no next stage: it keeps the words it was given (nothing to refine)
    assert [f.update_words for f in model.fusions] == [bidirectional] * 3 + [False]
