"""BSC (Bidirectional Spatial Correlation): the documented equations recomputed in float64 from
the block's own parameters, padded words ignored, pixel order irrelevant, the switches."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from btdnet.models.bsc import BidirectionalSpatialCorrelation

C, D_TEXT, DIM = 12, 10, 8


def _block(**kwargs) -> BidirectionalSpatialCorrelation:
    torch.manual_seed(0)
    block = BidirectionalSpatialCorrelation(visual_dim=C, text_dim=D_TEXT, dim=DIM, **kwargs)
    with torch.no_grad():  # move every parameter off its initial value (LN 1/0, scale 1/0)
        for p in block.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return block.double().eval()


def _inputs():
    generator = torch.Generator().manual_seed(1)
    visual = torch.randn(2, C, 3, 5, generator=generator, dtype=torch.float64)
    words = torch.randn(2, 6, D_TEXT, generator=generator, dtype=torch.float64)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False  # the second expression has 4 real words
    return visual, words, mask


def _linear(layer, x):
    return x @ layer.weight.T + layer.bias


def _reference(m: BidirectionalSpatialCorrelation, visual, words, mask):
    """Module docstring, steps 1-4, written out."""
    b, c, h, w = visual.shape
    pixels = visual.flatten(2).transpose(1, 2)  # (B, HW, C)
    normed = F.layer_norm(pixels, (c,), m.pixel_norm.weight, m.pixel_norm.bias)
    q = _linear(m.pixel_proj, normed)  # (B, HW, d)
    k, v = _linear(m.word_key, words), _linear(m.word_value, words)  # (B, T, d)
    a = torch.einsum("bpd,btd->bpt", q, k) / math.sqrt(DIM)
    # 2. softmax over the real words only
    e = torch.exp(a - a.max(-1, keepdim=True).values) * mask[:, None, :]
    to_words = e / e.sum(-1, keepdim=True)
    product = (to_words @ v) * q
    injected = torch.tanh(_linear(m.visual_gate, product)) * _linear(m.visual_update, product)
    # 3. mean of the real words -> sentence; correlation map with scale and bias
    sentence = (words * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    s = _linear(m.sentence_proj, sentence)  # (B, d)
    corr = torch.einsum("bpd,bd->bp", q, s) / math.sqrt(DIM) * m.map_scale + m.map_bias
    fused = pixels + injected * torch.sigmoid(corr)[..., None]
    # 4. words <- softmax over pixels of the same scores
    to_pixels = torch.softmax(a.transpose(1, 2), dim=-1)  # (B, T, HW)
    normed_words = F.layer_norm(words, (D_TEXT,), m.word_norm.weight, m.word_norm.bias)
    delta = m.word_update(torch.cat([normed_words, to_pixels @ q], dim=-1))
    return (
        fused.transpose(1, 2).reshape(b, c, h, w),
        words + delta,
        corr.reshape(b, 1, h, w),
    )


@pytest.mark.parametrize("reading", ["gated", "language_first"])
def test_matches_the_documented_equations(reading: str):
    # the language-first reading ignores update_words=False (the last stage): it needs the
    # refined words in its own stage
    block = _block(reading=reading, update_words=reading == "gated")
    reference = _reference if reading == "gated" else _language_first_reference
    visual, words, mask = _inputs()
    with torch.no_grad():
        out = block(visual, words, mask)
        fused, new_words, corr = reference(block, visual, words, mask)
    torch.testing.assert_close(out.visual, fused)
    torch.testing.assert_close(out.correlation, corr)
    torch.testing.assert_close(out.words, new_words)


def test_padded_words_change_nothing_real():
    block = _block()
    visual, words, mask = _inputs()
    other = words.clone()
    other[1, 4:] = 100.0 * torch.randn(2, D_TEXT, dtype=torch.float64)
    with torch.no_grad():
        a, b = block(visual, words, mask), block(visual, other, mask)
    torch.testing.assert_close(a.visual, b.visual)
    torch.testing.assert_close(a.correlation, b.correlation)
    torch.testing.assert_close(a.words[1, :4], b.words[1, :4])


def test_pixel_order_is_irrelevant():
    block = _block()
    visual, words, mask = _inputs()
    order = torch.randperm(15, generator=torch.Generator().manual_seed(2))
    shuffled = visual.flatten(2)[:, :, order].reshape(2, C, 3, 5)
    with torch.no_grad():
        a, b = block(visual, words, mask), block(shuffled, words, mask)
    torch.testing.assert_close(b.visual.flatten(2), a.visual.flatten(2)[:, :, order])
    torch.testing.assert_close(b.correlation.flatten(2), a.correlation.flatten(2)[:, :, order])
    torch.testing.assert_close(b.words, a.words)


def test_memory_layout_changes_nothing():
    """A channels_last map (what the image encoder hands on) gives the same fusion."""
    m = _block()
    visual, words, mask = _inputs()
    plain = m(visual, words, mask)
    cl = m(visual.contiguous(memory_format=torch.channels_last), words, mask)
    torch.testing.assert_close(cl.visual, plain.visual, rtol=0, atol=0)
    torch.testing.assert_close(cl.words, plain.words, rtol=0, atol=0)
    torch.testing.assert_close(cl.correlation, plain.correlation, rtol=0, atol=0)


def test_switches():
    visual, words, mask = _inputs()
    last = _block(update_words=False)
    with torch.no_grad():
        out = last(visual, words, mask)
    assert out.words is words and out.correlation is not None
    assert not hasattr(last, "word_update")
    one_way = _block(bidirectional=False)
    assert not hasattr(one_way, "sentence_proj") and not hasattr(one_way, "word_update")
    with torch.no_grad():
        out = one_way(visual, words, mask)
    assert out.correlation is None and out.words is words
    # plain fusion: pixels + tanh(gate) * update of the language-context product, no map weight
    pixels = visual.flatten(2).transpose(1, 2)
    q = _linear(one_way.pixel_proj, one_way.pixel_norm(pixels))
    a = torch.einsum("bpd,btd->bpt", q, _linear(one_way.word_key, words)) / math.sqrt(DIM)
    attn = a.masked_fill(~mask[:, None, :], float("-inf")).softmax(-1)
    product = (attn @ _linear(one_way.word_value, words)) * q
    injected = torch.tanh(one_way.visual_gate(product)) * one_way.visual_update(product)
    expected = (pixels + injected).transpose(1, 2).reshape(visual.shape)
    torch.testing.assert_close(out.visual, expected.detach())


def _language_first_reference(m: BidirectionalSpatialCorrelation, visual, words, mask):
    """The module docstring's second reading: step 4, then step 2 on the refined words (no map
    weight), then the map of step 3 from the refined sentence."""
    b, c, h, w = visual.shape
    pixels = visual.flatten(2).transpose(1, 2)  # (B, HW, C)
    normed = F.layer_norm(pixels, (c,), m.pixel_norm.weight, m.pixel_norm.bias)
    q = _linear(m.pixel_proj, normed)  # (B, HW, d)
    a = torch.einsum("bpd,btd->bpt", q, _linear(m.word_key, words)) / math.sqrt(DIM)
    to_pixels = torch.softmax(a.transpose(1, 2), dim=-1)  # (B, T, HW)
    normed_words = F.layer_norm(words, (D_TEXT,), m.word_norm.weight, m.word_norm.bias)
    refined = words + m.word_update(torch.cat([normed_words, to_pixels @ q], dim=-1))
    a = torch.einsum("bpd,btd->bpt", q, _linear(m.word_key, refined)) / math.sqrt(DIM)
    e = torch.exp(a - a.max(-1, keepdim=True).values) * mask[:, None, :]
    product = (e / e.sum(-1, keepdim=True) @ _linear(m.word_value, refined)) * q
    injected = torch.tanh(_linear(m.visual_gate, product)) * _linear(m.visual_update, product)
    sentence = (refined * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    s = _linear(m.sentence_proj, sentence)
    corr = torch.einsum("bpd,bd->bp", q, s) / math.sqrt(DIM) * m.map_scale + m.map_bias
    return (
        (pixels + injected).transpose(1, 2).reshape(b, c, h, w),
        refined,
        corr.reshape(b, 1, h, w),
    )


def test_in_the_language_first_reading_the_map_gates_nothing():
    block = _block(reading="language_first")
    visual, words, mask = _inputs()
    with torch.no_grad():
        out = block(visual, words, mask)
    with torch.no_grad():  # the map's own parameters move the map, never the fused features
        block.map_bias.add_(5.0)
        block.sentence_proj.weight.mul_(-3.0)
        moved = block(visual, words, mask)
    torch.testing.assert_close(moved.visual, out.visual)
    assert not torch.allclose(moved.correlation, out.correlation)
    gated = _block()
    with torch.no_grad():  # ... whereas in the gated reading they do
        before = gated(visual, words, mask).visual
        gated.map_bias.add_(5.0)
        assert not torch.allclose(gated(visual, words, mask).visual, before)


def test_an_unknown_reading_is_refused():
    with pytest.raises(ValueError, match="language_first"):
        BidirectionalSpatialCorrelation(visual_dim=C, text_dim=D_TEXT, dim=DIM, reading="both")


def _same_weights(source: BidirectionalSpatialCorrelation, target: BidirectionalSpatialCorrelation):
    """Copy every parameter ``target`` shares with ``source`` (by name)."""
    own = dict(source.named_parameters())
    with torch.no_grad():
        for name, p in target.named_parameters():
            if name in own:
                p.copy_(own[name])


def test_the_from_baseline_reading_starts_as_one_way_fusion():
    block = _block(reading="from_baseline")
    with torch.no_grad():  # _block moved the gates off zero: put them back at their start
        block.map_gate.zero_()
        block.word_gate.zero_()
    one_way = _block(bidirectional=False)
    _same_weights(block, one_way)
    visual, words, mask = _inputs()
    with torch.no_grad():
        out, baseline = block(visual, words, mask), one_way(visual, words, mask)
    torch.testing.assert_close(out.visual, baseline.visual)
    torch.testing.assert_close(out.words, words)  # the word update is gated off
    assert out.correlation is not None  # the map is still there to supervise


def test_the_from_baseline_reading_with_open_gates_is_the_gated_reading():
    block = _block(reading="from_baseline")
    with torch.no_grad():
        block.map_gate.fill_(1.0)
        block.word_gate.fill_(1.0)
    gated = _block(reading="gated")
    _same_weights(block, gated)
    visual, words, mask = _inputs()
    one_way = _block(bidirectional=False)
    _same_weights(block, one_way)
    with torch.no_grad():
        out, reference = block(visual, words, mask), gated(visual, words, mask)
        block.map_gate.fill_(0.5)
        half = block(visual, words, mask).visual
        baseline = one_way(visual, words, mask).visual
    torch.testing.assert_close(out.visual, reference.visual)
    torch.testing.assert_close(out.words, reference.words)
    # the injection weight 1 + g (sigmoid(map) - 1) is linear in g: halfway between both
    torch.testing.assert_close(half, (reference.visual + baseline) / 2)


def test_the_from_baseline_gates_start_at_zero_and_learn():
    block = BidirectionalSpatialCorrelation(
        visual_dim=C, text_dim=D_TEXT, dim=DIM, reading="from_baseline"
    ).double()
    assert block.map_gate.item() == 0.0 and block.word_gate.item() == 0.0
    visual, words, mask = _inputs()
    out = block(visual, words, mask)
    (out.visual.square().sum() + out.words.square().sum()).backward()
    assert block.map_gate.grad is not None and block.map_gate.grad.abs().item() > 0
    assert block.word_gate.grad is not None and block.word_gate.grad.abs().item() > 0
