"""BiCoR-Seg against an independent reference written from the equations (float64).

The reference below restates the authors' equations with explicit loops and manual norms; it
shares no code with ``bicor.models`` / ``bicor.losses`` beyond reading their weights.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from bicor.models import HBISLayer, MultiScaleFusion, build_bicor
from bicor.models.heads import SegmentationHead


@pytest.fixture(autouse=True)
def _float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def two_layer(x, seq):
    return gelu(x @ seq[0].weight.T + seq[0].bias) @ seq[2].weight.T + seq[2].bias


def reference_hbis(layer, features, embeddings):
    """Equations of one HBIS layer, per class and per pixel where it matters."""
    b, d, h, w = features.shape
    k_classes = embeddings.shape[1]
    tokens = features.flatten(2).transpose(1, 2)  # (B, S, D)
    fn = layer_norm(tokens, layer.feature_norm.weight, layer.feature_norm.bias, 1e-5)
    en = layer_norm(embeddings, layer.embedding_norm.weight, layer.embedding_norm.bias, 1e-5)
    heat = torch.einsum("bkd,bsd->bks", en @ layer.query.weight.T, fn) / math.sqrt(d)
    s = h * w
    k = min(s, max(layer.min_topk, round(layer.topk_ratio * s)))
    weights = torch.zeros_like(heat)
    sig = torch.sigmoid(heat).detach()
    for bi in range(b):
        for ci in range(k_classes):
            order = torch.argsort(sig[bi, ci], descending=True)[:k]
            weights[bi, ci, order] = sig[bi, ci, order] / (sig[bi, ci, order].sum() + 1e-6)
    context = torch.einsum("bks,bsd->bkd", weights, fn @ layer.value.weight.T)
    gate = torch.sigmoid(two_layer(torch.cat([en, context], -1), layer.gate))
    new_e = gate * two_layer(context, layer.candidate) + (1 - gate) * embeddings
    gamma = 1 + torch.tanh(new_e @ layer.film_scale.weight.T + layer.film_scale.bias)
    beta = new_e @ layer.film_shift.weight.T + layer.film_shift.bias
    soft = torch.softmax(heat, dim=1)  # (B, K, S)
    new_f = torch.zeros_like(tokens)
    for ci in range(k_classes):  # sum over classes of the class-wise FiLM
        new_f = new_f + soft[:, ci, :, None] * (gamma[:, ci, None, :] * tokens + beta[:, ci, None])
    out_f = 0.5 * tokens + 0.5 * new_f
    return out_f.transpose(1, 2).reshape(b, d, h, w), new_e, heat.reshape(b, k_classes, h, w)


def _randomise(module):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3 + (1.0 if p.ndim == 1 else 0.0) * 0.2)


@pytest.mark.parametrize("ratio", [1.0, 0.1])
def test_hbis_layer_matches_the_equations_values_and_gradients(ratio):
    layer = HBISLayer(dim=16, topk_ratio=ratio, min_topk=3)
    _randomise(layer)
    torch.manual_seed(2)
    features = torch.randn(2, 16, 5, 7, requires_grad=True)
    embeddings = torch.randn(2, 4, 16, requires_grad=True)
    got = layer(features, embeddings)
    ref = reference_hbis(layer, features, embeddings)
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, atol=1e-10, rtol=1e-10)
    probe = [torch.randn_like(t) for t in got]
    params = [features, embeddings, *layer.parameters()]
    grads = torch.autograd.grad(sum((g * p).sum() for g, p in zip(got, probe)), params)
    ref_grads = torch.autograd.grad(sum((r * p).sum() for r, p in zip(ref, probe)), params)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, atol=1e-10, rtol=1e-10)


def test_fusion_matches_the_equations():
    fusion = MultiScaleFusion(in_channels=[3, 5, 6, 7], dim=16)
    _randomise(fusion)
    sizes = [(8, 12), (4, 6), (2, 3), (1, 2)]
    feats = [torch.randn(2, c, *hw) for c, hw in zip([3, 5, 6, 7], sizes)]
    parts = []
    for x, proj in zip(feats, fusion.projections):
        y = torch.einsum("bchw,oc->bohw", x, proj.weight) + proj.bias[:, None, None]
        parts.append(F.interpolate(y, size=(8, 12), mode="bilinear", align_corners=False))
    stacked = torch.cat(parts[::-1], dim=1)  # deepest stage first
    expected = torch.einsum("bchw,oc->bohw", stacked, fusion.fuse.weight[:, :, 0, 0])
    torch.testing.assert_close(fusion(feats), expected, atol=1e-10, rtol=1e-10)
    assert fusion.fuse.bias is None


def pixel_shuffle(x, r=2):
    b, c, h, w = x.shape
    x = x.reshape(b, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // (r * r), h * r, w * r)


def test_head_matches_the_equations_and_detaches_the_auxiliary_embeddings():
    head = SegmentationHead(dim=32)
    _randomise(head)
    features = torch.randn(2, 32, 3, 5, requires_grad=True)
    embeddings = torch.randn(2, 4, 32, requires_grad=True)
    norm = head.upsampler[1]
    up = pixel_shuffle(features)
    up = layer_norm(up.permute(0, 2, 3, 1), norm.weight, norm.bias, 1e-6).permute(0, 3, 1, 2)
    up = gelu(pixel_shuffle(gelu(up)))  # (B, 2, 12, 20)
    expected = torch.einsum("bchw,bkc->bkhw", up, embeddings @ head.classifier.weight.T)
    torch.testing.assert_close(head(features, embeddings), expected, atol=1e-10, rtol=1e-10)
    aux_expected = torch.einsum("bchw,bkc->bkhw", up, embeddings @ head.aux_classifier.weight.T)
    aux = head.auxiliary(features, embeddings)
    torch.testing.assert_close(aux, aux_expected, atol=1e-10, rtol=1e-10)
    grad_e, grad_f = torch.autograd.grad(aux.sum(), [embeddings, features], allow_unused=True)
    assert grad_e is None and grad_f.abs().sum() > 0


def reference_ce(logits, target, ignore, eps):
    """Label-smoothed CE summed over labelled pixels, divided by every pixel."""
    b, k, h, w = logits.shape
    logp = torch.log_softmax(logits, 1)
    one_hot = torch.stack([target == c for c in range(k)], 1)  # ignored pixels: all False
    valid = target != ignore
    nll = -(logp * one_hot).sum()
    uniform = -(logp.sum(1) * valid).sum()
    return ((1 - eps) * nll + eps / k * uniform) / (b * h * w)


def reference_dice(logits, target, ignore, smooth=0.05):
    k = logits.shape[1]
    p = torch.softmax(logits, 1)
    valid = target != ignore
    losses = []
    for c in range(k):
        t = (target == c) & valid
        inter = (p[:, c] * t).sum()
        card = (p[:, c] * valid).sum() + t.sum()
        dice = (2 * inter + smooth) / (card + smooth)
        losses.append((1 - dice) if t.any() else logits.new_zeros(()))
    return torch.stack(losses).mean()


def reference_fisher(e):
    mu = e.mean(0)
    within = ((e - mu) ** 2).sum(-1).mean()
    k = e.shape[1]
    pairs = [((mu[i] - mu[j]) ** 2).sum() for i in range(k) for j in range(i + 1, k)]
    return within / (torch.stack(pairs).mean().clamp_min(1e-4) + 1e-6)


@pytest.mark.parametrize("final_fisher", [0.0, 1.0])
def test_full_objective_matches_the_equations(final_fisher):
    torch.manual_seed(0)
    model = build_bicor(
        "tiny", num_classes=4, topk_ratio=0.1, ignore_index=9, final_fisher_weight=final_fisher
    ).double()
    x = torch.randn(3, 3, 32, 32)
    y = torch.randint(0, 4, (3, 32, 32))
    y[:, :5] = 9
    y[y == 2] = 1  # an absent class
    out = model(x, y)

    def main(logits):
        return reference_ce(logits, y, 9, 0.05) + reference_dice(logits, y, 9)

    def up(h):
        return F.interpolate(h, size=(32, 32), mode="bilinear", align_corners=False)

    expected = (
        main(out.logits)
        + 0.4 * reference_ce(out.aux_logits, y, 9, 0.05)
        + 0.1 * sum(main(up(h)) for h in out.heatmaps)
        + 0.1 * sum(reference_fisher(e) for e in out.layer_embeddings)
        + final_fisher * reference_fisher(out.layer_embeddings[-1])
    )
    torch.testing.assert_close(out.loss, expected, atol=1e-9, rtol=1e-9)
