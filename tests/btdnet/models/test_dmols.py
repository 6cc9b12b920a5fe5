"""D-MOLS pieces against hand values: region pooling and where visual cells are masked."""

from __future__ import annotations

import pytest
import torch

from btdnet.models.dmols import DualModalObjectLearning, VisualReconstructionHead, pool_region


def test_pool_region_is_the_area_weighted_mean_under_the_mask():
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    block = torch.zeros(1, 4, 4)
    block[0, :2, :2] = 1  # the top-left cell, fully covered
    assert pool_region(features, block).tolist() == [[1.0]]
    top_row = torch.zeros(1, 4, 4)
    top_row[0, 0] = 1  # half of each top cell: weights 0.5, 0.5 -> mean of 1 and 2
    assert pool_region(features, top_row).tolist() == [[1.5]]
    corner = torch.zeros(1, 4, 4)
    corner[0, 3, 3] = 1  # a quarter of the bottom-right cell: weight 0.25 on 4 alone
    assert pool_region(features, corner).tolist() == [[4.0]]
    # an empty mask falls back to the mean of the whole map: (1 + 2 + 3 + 4) / 4
    assert pool_region(features, torch.zeros(1, 4, 4)).tolist() == [[2.5]]


def _dmols(
    region: float,
    context: float,
    *,
    words: float = 0.5,
    visual_dim: int = 4,
    reconstruct: str = "inputs",
) -> DualModalObjectLearning:
    return DualModalObjectLearning(
        visual_dim=visual_dim, text_dim=4, vocab_size=10, patch=2, mask_token_id=3,
        region_mask_ratio=region, context_mask_ratio=context, word_mask_ratio=words,
        reconstruct=reconstruct,
    )  # fmt: skip


def test_cells_in_and_around_the_target_use_the_region_rate():
    targets = torch.zeros(1, 16, 16)
    targets[0, 4:6, 10:12] = 1  # one cell of the 8x8 grid: (2, 5)
    region_only = _dmols(region=1.0, context=0.0).mask_cells(targets, (8, 8))
    expected = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    expected[0, 0, 0:5, 3:8] = True  # the 5x5 neighbourhood of (2, 5), clipped at the border
    assert torch.equal(region_only, expected)
    context_only = _dmols(region=0.0, context=1.0).mask_cells(targets, (8, 8))
    assert torch.equal(context_only, ~expected)
    # no target: every cell is context
    assert not _dmols(region=1.0, context=0.0).mask_cells(torch.zeros(1, 16, 16), (8, 8)).any()


def test_visual_mask_token_starts_at_bert_initialiser_scale() -> None:
    # the learned [MASK] cell starts as BERT initialises embeddings: N(0, 0.02^2), so a masked
    # cell begins near zero rather than as a large random feature
    torch.manual_seed(0)
    head = _dmols(region=0.5, context=0.5)
    token = _dmols(region=0.5, context=0.5, visual_dim=512).visual.mask_token.detach()
    assert token.shape == (512,)
    assert 0.015 < float(token.std()) < 0.025 and abs(float(token.mean())) < 0.005
    assert head.visual.mask_token.shape == (4,)


def test_word_masking_spares_cls_sep_and_padding_and_reaches_every_word() -> None:
    torch.manual_seed(0)
    head = _dmols(region=0.5, context=0.5, words=1.0)
    # [CLS] w w w [SEP] pad pad, and a short one: [CLS] w [SEP] pad ...
    ids = torch.tensor([[1, 5, 6, 7, 2, 0, 0], [1, 8, 2, 0, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0]])
    masked, selected = head.mask_words(ids, mask)
    # ratio 1: every word between [CLS] and [SEP] is masked, nothing else
    expected = torch.tensor([[0, 1, 1, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(selected, expected)
    assert masked.tolist() == [[1, 3, 3, 3, 2, 0, 0], [1, 3, 2, 0, 0, 0, 0]]


def test_feature_reading_reconstructs_the_clean_detached_features() -> None:
    torch.manual_seed(0)
    head = _dmols(region=1.0, context=1.0, reconstruct="features")  # every cell masked
    assert head.visual.to_pixels.out_channels == 4 and head.language.bias is None
    assert _dmols(region=1.0, context=1.0).visual.to_pixels.out_channels == 3 * 2 * 2
    features = torch.randn(2, 4, 3, 5, requires_grad=True)
    sentence = torch.randn(2, 4)
    loss = head.visual_loss(
        features=features,
        pixel_values=torch.randn(2, 3, 6, 10),
        targets=torch.zeros(2, 6, 10),
        sentence=sentence,
    )
    # by hand: the head's output against the per-cell normalised features, every cell masked
    prediction = head.visual(features, torch.ones(2, 1, 3, 5, dtype=torch.bool), sentence)
    truth = features.detach()
    truth = (truth - truth.mean(1, keepdim=True)) / (
        truth.var(1, keepdim=True, unbiased=False) + 1e-6
    ).sqrt()
    torch.testing.assert_close(loss, (prediction - truth).pow(2).mean())
    # the target is detached: the features get their gradient through the prediction alone
    (grad,) = torch.autograd.grad(loss, features)
    (through_prediction,) = torch.autograd.grad((prediction - truth).pow(2).mean(), features)
    torch.testing.assert_close(grad, through_prediction)

    # words: 1 - cosine of the predicted feature and the clean word feature, masked words only
    masked_words = torch.randn(2, 5, 4)
    clean = torch.randn(2, 5, 4, requires_grad=True)
    selected = torch.zeros(2, 5, dtype=torch.bool)
    selected[0, 1], selected[1, 3] = True, True
    region = torch.randn(2, 4)
    loss = head.language_loss(
        masked_words=masked_words, selected=selected, input_ids=torch.zeros(2, 5, dtype=torch.long),
        region=region, embeddings=torch.randn(10, 4), clean_words=clean,
    )  # fmt: skip
    predicted = head.language.hidden(masked_words[selected], region)
    expected = 1 - torch.nn.functional.cosine_similarity(predicted, clean[selected].detach())
    torch.testing.assert_close(loss, expected.mean())
    assert torch.autograd.grad(loss, clean, allow_unused=True)[0] is None
    with pytest.raises(ValueError, match="clean_words"):
        head.language_loss(
            masked_words=masked_words, selected=selected, input_ids=torch.zeros(2, 5).long(),
            region=region, embeddings=torch.randn(10, 4),
        )  # fmt: skip
    with pytest.raises(RuntimeError, match="features only"):
        head.language(masked_words[0], region, torch.randn(10, 4))
    with pytest.raises(ValueError, match="reconstruct"):
        _dmols(region=0.5, context=0.5, reconstruct="tokens")


def test_visual_head_follows_its_documented_film_equation() -> None:
    """x = mask ? token : features; x = x * (1 + scale) + shift with (scale, shift) =
    film(sentence) per sample and channel; out = to_pixels(body(x))."""
    torch.manual_seed(0)
    head = VisualReconstructionHead(dim=4, text_dim=6, patch=2, out_channels=12).eval()
    features = torch.randn(2, 4, 3, 5)
    cell_mask = torch.zeros(2, 1, 3, 5, dtype=torch.bool)
    cell_mask[0, 0, 1, 2] = cell_mask[1, 0, 0, 4] = True
    sentence = torch.randn(2, 6)
    with torch.no_grad():
        film = head.film(sentence)  # (2, 8): scale then shift
        scale, shift = film[:, :4, None, None], film[:, 4:, None, None]
        x = features.clone()
        x[0, :, 1, 2] = head.mask_token
        x[1, :, 0, 4] = head.mask_token
        expected = head.to_pixels(head.body(x * (1 + scale) + shift))
        torch.testing.assert_close(head(features, cell_mask, sentence), expected)
        assert shift.abs().min() > 1e-3  # a shift that shows (not near 0 or 1)
