"""T-BTD: the two streams exchange information at every scale; the single-stream ablation has
no background stream; the computation follows the documented top-down equations."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from btdnet.models.twin_stream_decoder import TwinStreamDecoder

CHANNELS = [6, 10, 12, 16]


def _features(batch: int = 2, size: tuple[int, int] = (20, 28)) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    h, w = size
    return [
        torch.randn(batch, c, -(-h // s), -(-w // s), generator=generator)
        for c, s in zip(CHANNELS, (1, 2, 4, 8))
    ]  # finest first, odd sizes: 20x28, 10x14, 5x7, 3x4


def _decoder(twin: bool = True) -> TwinStreamDecoder:
    torch.manual_seed(0)
    return TwinStreamDecoder(in_channels=CHANNELS, dim=8, twin=twin).eval()


def _perturb(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p))


def test_target_stream_sees_the_background_stream_and_back():
    features = _features()
    decoder = _decoder()
    with torch.no_grad():
        before = decoder(features)
        # change only the background stream's coarsest block: the target logits must move,
        # since at every finer scale the target block reads the background state
        _perturb(decoder.background_blocks[3])
        after_background = decoder(features)
        _perturb(decoder.target_blocks[3])
        after_target = decoder(features)
    assert (after_background.target_logits - before.target_logits).abs().max() > 1e-3
    assert (after_target.background_logits - after_background.background_logits).abs().max() > 1e-3


def test_single_stream_has_no_background_and_no_exchange():
    features = _features()
    decoder = _decoder(twin=False)
    assert not hasattr(decoder, "background_blocks")
    assert all(block[0].in_channels == 8 for block in decoder.target_blocks)
    with torch.no_grad():
        out = decoder(features)
    assert out.background_logits is None
    assert out.target_logits.shape == (2, 1, 20, 28)


def _reference(decoder: TwinStreamDecoder, features: list[torch.Tensor]):
    """From the module docstring: laterals L_i; from the coarsest scale down,
    t_in = L_i + up(T_{i+1}), b_in = L_i + up(B_{i+1}) (just L_i at the coarsest);
    T_i = t_in + block_t([t_in, b_in]), B_i = b_in + block_b([b_in, t_in]);
    heads on the finest T and B."""
    laterals = [proj(f) for proj, f in zip(decoder.laterals, features)]

    def up(x, like):
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    t = b = None
    for i in (3, 2, 1, 0):
        lat = laterals[i]
        t_in = lat if t is None else lat + up(t, lat)
        b_in = lat if b is None else lat + up(b, lat)
        t = t_in + decoder.target_blocks[i](torch.cat([t_in, b_in], 1))
        b = b_in + decoder.background_blocks[i](torch.cat([b_in, t_in], 1))
    return decoder.target_head(t), decoder.background_head(b), t


def test_matches_the_documented_equations():
    features = _features()
    decoder = _decoder()
    with torch.no_grad():
        out = decoder(features)
        target, background, target_features = _reference(decoder, features)
    assert out.target_logits.shape == out.background_logits.shape == (2, 1, 20, 28)
    torch.testing.assert_close(out.target_logits, target)
    torch.testing.assert_close(out.background_logits, background)
    torch.testing.assert_close(out.target_features, target_features)
    assert [tuple(lat.shape[-2:]) for lat in out.laterals] == [(20, 28), (10, 14), (5, 7), (3, 4)]


def test_single_stream_matches_its_documented_equations():
    # the target stream alone: t_in = L_i + up(T_{i+1}) (L_i at the coarsest), T_i = t_in +
    # block_t(t_in), the head on the finest T
    features = _features()
    decoder = _decoder(twin=False)
    _perturb(decoder)  # no near-zero blocks: a wrong combination must show
    with torch.no_grad():
        out = decoder(features)
        laterals = [proj(f) for proj, f in zip(decoder.laterals, features)]
        t = None
        for i in (3, 2, 1, 0):
            lat = laterals[i]
            up = None if t is None else F.interpolate(t, size=lat.shape[-2:], mode="bilinear")
            t_in = lat if up is None else lat + up
            t = t_in + decoder.target_blocks[i](t_in)
        expected = decoder.target_head(t)
    torch.testing.assert_close(out.target_logits, expected)
    torch.testing.assert_close(out.target_features, t)
