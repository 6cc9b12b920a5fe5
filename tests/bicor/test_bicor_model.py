"""BiCoR-Seg model: HBIS shapes and top-k, the assembled model, gradients, ablation, saving."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bicor import build_bicor, load_bicor
from bicor.models import HBISLayer, HBISStack, MultiScaleFusion, bicor_config
from bicor.models.hbis import topk_count


class FakeEncoder(nn.Module):
    """Four NCHW maps at strides 4/8/16/32 from strided convs (channels 4, 6, 8, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.channels = [4, 6, 8, 10]
        self.strides = [4, 8, 16, 32]
        self.stem = nn.Conv2d(3, 4, 4, stride=4)
        self.downs = nn.ModuleList(
            nn.Conv2d(a, b, 2, stride=2) for a, b in [(4, 6), (6, 8), (8, 10)]
        )

    def forward(self, x):
        feats = [self.stem(x)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        return feats


def _tiny(**overrides):
    torch.manual_seed(0)
    return build_bicor("tiny", num_classes=5, **overrides)


def test_topk_count():
    assert topk_count(100, 1.0, 64) == 100
    assert topk_count(10_000, 0.02, 64) == 200
    assert topk_count(1_000, 0.02, 64) == 64
    assert topk_count(30, 0.5, 64) == 30
    assert topk_count(10, 0.25, 1) == 2  # round(2.5) = 2 (the authors' round, not ceil)
    assert topk_count(14, 0.25, 1) == 4  # round(3.5) = 4


def _moved(module: nn.Module) -> nn.Module:
    """Every parameter moved off its initial value (zero-initialised parts included)."""
    torch.manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return module.double().eval()


def test_hbis_layer_heatmap_is_per_pixel_and_shapes():
    layer = _moved(HBISLayer(dim=8))
    torch.manual_seed(2)
    features, embeddings = torch.randn(2, 8, 5, 7).double(), torch.randn(2, 3, 8).double()
    new_f, new_e, heat = layer(features, embeddings)
    assert new_f.shape == (2, 8, 5, 7) and new_e.shape == (2, 3, 8)
    assert heat.shape == (2, 3, 5, 7)
    # a pixel's heatmap logits depend on that pixel's feature alone
    changed = features.clone()
    changed[:, :, 2, 3] = torch.randn(2, 8).double()
    heat_changed = layer(changed, embeddings)[2]
    moved = (heat_changed - heat).abs().amax(dim=(0, 1)) > 1e-9  # (5, 7)
    expected = torch.zeros(5, 7, dtype=torch.bool)
    expected[2, 3] = True
    assert torch.equal(moved, expected)
    # the same feature at every pixel: the same logits at every pixel
    flat = features[:, :, :1, :1].expand(-1, -1, 5, 7)
    heat_flat = layer(flat, embeddings)[2]
    torch.testing.assert_close(heat_flat, heat_flat[:, :, :1, :1].expand_as(heat_flat))
    with pytest.raises(ValueError, match="dim=8"):
        layer(torch.randn(2, 4, 5, 7), embeddings)


@pytest.mark.parametrize("topk_ratio", [1.0, 0.3])
def test_hbis_layer_treats_classes_and_pixels_symmetrically(topk_ratio):
    """Classes are a set and pixels a bag: permuting the class embeddings permutes heatmaps and
    embeddings and leaves the features; permuting pixels permutes features and heatmaps and
    leaves the embeddings (HBIS has no positional operation)."""
    layer = _moved(HBISLayer(dim=8, topk_ratio=topk_ratio, min_topk=4))
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 8, 5, 7, generator=generator, dtype=torch.float64)
    embeddings = torch.randn(2, 3, 8, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        f, e, heat = layer(features, embeddings)
        classes = torch.tensor([2, 0, 1])
        f_c, e_c, heat_c = layer(features, embeddings[:, classes])
        pixels = torch.randperm(35, generator=generator)
        shuffled = features.flatten(2)[:, :, pixels].reshape(2, 8, 5, 7)
        f_p, e_p, heat_p = layer(shuffled, embeddings)
    torch.testing.assert_close(e_c, e[:, classes])
    torch.testing.assert_close(heat_c, heat[:, classes])
    torch.testing.assert_close(f_c, f)
    torch.testing.assert_close(e_p, e)
    torch.testing.assert_close(f_p.flatten(2), f.flatten(2)[:, :, pixels])
    torch.testing.assert_close(heat_p.flatten(2), heat.flatten(2)[:, :, pixels])
    # and the samples of a batch do not see each other
    with torch.no_grad():
        f_1, _, heat_1 = layer(features[1:], embeddings[1:])
    torch.testing.assert_close(f_1, f[1:])
    torch.testing.assert_close(heat_1, heat[1:])


def test_hbis_pooling_keeps_only_top_k_pixels():
    layer = HBISLayer(dim=4, topk_ratio=0.25, min_topk=2)
    # HW = 8 -> k = max(2, round(0.25 * 8)) = 2
    heat = torch.tensor([[[0.0, 3.0, -1.0, 2.0, 1.0, -2.0, 0.5, -3.0]]])  # (B=1, K=1, HW=8)
    weights = layer.pooling_weights(heat)
    kept = weights[0, 0] > 0
    assert kept.tolist() == [False, True, False, True, False, False, False, False]
    s3, s2 = 1 / (1 + math.exp(-3.0)), 1 / (1 + math.exp(-2.0))
    assert weights[0, 0, 1].item() == pytest.approx(s3 / (s3 + s2 + 1e-6), 1e-5)
    assert weights.sum().item() == pytest.approx(1.0, 1e-5)
    all_pixels = HBISLayer(dim=4, topk_ratio=1.0).pooling_weights(heat)
    assert bool((all_pixels > 0).all())
    assert not weights.requires_grad  # pooling weights carry no gradient


def test_hbis_stack_returns_every_layer():
    layers = [_moved(HBISLayer(dim=8)) for _ in range(3)]
    stack = HBISStack(layers)
    features = torch.randn(2, 8, 4, 4, dtype=torch.float64)
    embeddings = torch.randn(2, 5, 8, dtype=torch.float64)
    with torch.no_grad():
        f, e, heatmaps, per_layer = stack(features, embeddings)
        # the layers run in order, each on the previous one's output
        f1, e1, h1 = layers[0](features, embeddings)
        f2, e2, h2 = layers[1](f1, e1)
        f3, e3, h3 = layers[2](f2, e2)
    assert len(heatmaps) == len(per_layer) == 3 and per_layer[-1] is e
    for got, want in zip([*heatmaps, *per_layer, f], [h1, h2, h3, e1, e2, e3, f3]):
        torch.testing.assert_close(got, want)


def test_fusion_upsamples_to_the_first_stage_and_uses_every_stage():
    fusion = _moved(MultiScaleFusion(in_channels=[4, 6, 8, 10], dim=12))
    feats = [
        torch.randn(2, c, 16 // s, 24 // s, dtype=torch.float64)
        for c, s in zip([4, 6, 8, 10], [1, 2, 4, 8])
    ]
    with torch.no_grad():
        fused = fusion(feats)
        assert fused.shape == (2, 12, 16, 24)
        for stage in range(4):
            changed = [f.clone() for f in feats]
            changed[stage] = changed[stage] + 1.0
            assert (fusion(changed) - fused).abs().max() > 1e-6, stage
        # sample 1 does not depend on sample 0
        other = [f.clone() for f in feats]
        other[3][0] = 0.0
        torch.testing.assert_close(fusion(other)[1], fused[1])
    with pytest.raises(ValueError, match="expects 4"):
        fusion(feats[:3])


@pytest.mark.parametrize("size", [(64, 64), (96, 64), (70, 100)])
def test_model_output_shapes_and_losses(size):
    model = _tiny(topk_ratio=0.1)
    h, w = size
    x = torch.randn(2, 3, h, w)
    targets = torch.randint(0, 5, (2, h, w))
    targets[:, :3] = 255
    out = model(x, targets)
    assert out.logits.shape == (2, 5, h, w)
    assert out.aux_logits.shape == (2, 5, h, w)
    assert len(out.heatmaps) == 2 and len(out.layer_embeddings) == 2
    assert out.heatmaps[0].shape[:2] == (2, 5)
    assert out.layer_embeddings[0].shape == (2, 5, 32)
    assert set(out.losses) == {"ce", "dice", "aux_ce", "hier", "fisher", "fisher_final", "total"}
    assert torch.isfinite(out.loss) and out.loss is out.losses["total"]
    # the main CE is torch's with the config's smoothing, summed over the labelled pixels and
    # divided by every pixel (the authors' SoftCrossEntropyLoss)
    config = model.config

    def soft_ce(logits: torch.Tensor) -> torch.Tensor:
        per_pixel = F.cross_entropy(
            logits,
            targets,
            ignore_index=255,
            label_smoothing=config.label_smoothing,
            reduction="none",
        )
        return per_pixel.sum() / targets.numel()

    torch.testing.assert_close(out.losses["ce"], soft_ce(out.logits))
    # the auxiliary CE is the same formula on the auxiliary head's own logits
    torch.testing.assert_close(out.losses["aux_ce"], soft_ce(out.aux_logits))
    assert (out.aux_logits - out.logits).abs().max() > 1e-4  # another head, another answer
    terms = out.losses
    total = (
        terms["ce"]
        + config.dice_weight * terms["dice"]
        + config.aux_weight * terms["aux_ce"]
        + config.hier_weight * terms["hier"]
        + config.fisher_weight * terms["fisher"]
        + config.final_fisher_weight * terms["fisher_final"]
    )
    torch.testing.assert_close(out.loss, total)
    model.eval()
    with torch.no_grad():
        evaluated = model(x)
        # samples are scored independently: changing image 0 leaves image 1's logits
        changed = x.clone()
        changed[0] = torch.randn(3, h, w)
        other = model(changed)
    assert evaluated.aux_logits is None and evaluated.loss is None and not evaluated.losses
    torch.testing.assert_close(other.logits[1], evaluated.logits[1])
    assert (other.logits[0] - evaluated.logits[0]).abs().max() > 1e-4
    # so are each layer's heatmaps and class embeddings (HBIS adapts them to each image)
    for name in ("heatmaps", "layer_embeddings"):
        for moved, kept in zip(getattr(other, name), getattr(evaluated, name)):
            torch.testing.assert_close(moved[1], kept[1])
            assert (moved[0] - kept[0]).abs().max() > 1e-6, name


def test_loss_is_lowest_for_the_models_own_prediction():
    """The main cross-entropy against the model's own arg-max labels is lower than against any
    other labelling of the same pixels (here: every label shifted by one class)."""
    model = _tiny(topk_ratio=0.1)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        own = model(x).logits.argmax(1)  # (2, 64, 64)
        fitted = model(x, own).losses["ce"]
        shifted = model(x, (own + 1) % 5).losses["ce"]
    assert fitted < shifted


def test_every_parameter_gets_a_gradient():
    model = _tiny(topk_ratio=0.1)
    x = torch.randn(2, 3, 64, 64)
    targets = torch.randint(0, 5, (2, 64, 64))
    model(x, targets).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    # timm zero-initialises each ResNet block's last BN scale, so only our own parts are checked
    # for a non-zero gradient
    zero = [
        n
        for n, p in model.named_parameters()
        if not n.startswith("encoder.") and p.grad.abs().sum() == 0
    ]
    assert zero == []


def test_plain_fused_head_ablation():
    model = _tiny(use_hbis=False)
    assert model.hbis is None
    out = model(torch.randn(2, 3, 64, 64), torch.randint(0, 5, (2, 64, 64)))
    assert out.heatmaps == [] and out.layer_embeddings == []
    assert out.losses["hier"].item() == 0.0 and out.losses["fisher"].item() == 0.0
    assert not any(n.startswith("hbis") for n, _ in model.named_parameters())


def test_model_accepts_an_injected_encoder():
    config = bicor_config("tiny", num_classes=3, num_layers=1)
    from bicor.models import build_bicor_from_config

    model = build_bicor_from_config(config, encoder=FakeEncoder())
    out = model(torch.randn(1, 3, 64, 96), torch.randint(0, 3, (1, 64, 96)))
    assert out.logits.shape == (1, 3, 64, 96)
    assert out.heatmaps[0].shape == (1, 3, 16, 24)
    assert out.losses["fisher"].item() == 0.0  # batch of one: no within-class scatter


def test_save_and_load_round_trip(tmp_path):
    model = _tiny(num_layers=1, class_names=["a", "b", "c", "d", "e"]).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x).logits
    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_bicor(tmp_path / "ckpt").eval()
    assert loaded.config == model.config
    assert loaded.class_names == ["a", "b", "c", "d", "e"]
    with torch.no_grad():
        assert torch.allclose(loaded(x).logits, expected, atol=1e-6)


def test_config_errors():
    with pytest.raises(ValueError, match="unknown BiCoR variant"):
        build_bicor("huge")
    with pytest.raises(ValueError, match="unknown BiCoRConfig fields"):
        bicor_config("tiny", num_clases=3)
    with pytest.raises(ValueError, match="class names"):
        bicor_config("tiny", num_classes=3, class_names=["a"])
    with pytest.raises(ValueError, match="image_pretrained"):
        build_bicor("tiny", pretrained=True)
