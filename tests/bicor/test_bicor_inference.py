"""Sliding-window inference: one window equals whole-image inference; odd sizes; flips."""

import pytest
import torch
import torch.nn.functional as F

from bicor.inference import sliding_window_predict


def _conv_model(num_classes=3):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, num_classes, 3, padding=1)

    def model_fn(x):
        return conv(x) + x.mean(dim=(1, 2, 3), keepdim=True)  # a global term: windows matter

    return model_fn


def test_one_window_equals_whole_image_inference():
    model_fn = _conv_model()
    image = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        whole = model_fn(image)
    out = sliding_window_predict(model_fn, image, num_classes=3, window=(32, 48), stride=16)
    assert torch.allclose(out, whole, atol=1e-6)


def test_pointwise_model_is_reproduced_at_any_size_and_stride():
    weight = torch.randn(4, 3, 1, 1)

    def model_fn(x):
        return F.conv2d(x, weight)

    for height, width in [(37, 53), (16, 16), (10, 70), (5, 5)]:
        image = torch.randn(1, 3, height, width)
        out = sliding_window_predict(
            model_fn, image, num_classes=4, window=16, stride=6, window_batch=3
        )
        assert out.shape == (1, 4, height, width)
        assert torch.allclose(out, F.conv2d(image, weight), atol=1e-5)


def test_overlapping_logits_are_averaged():
    calls = []

    def model_fn(x):
        calls.append(x.shape[0])
        # each window predicts its own running index: 1, 2, 3 ...
        start = sum(calls) - x.shape[0]
        values = torch.arange(start + 1, start + x.shape[0] + 1, dtype=torch.float32)
        return values.view(-1, 1, 1, 1).expand(-1, 1, x.shape[2], x.shape[3])

    image = torch.zeros(1, 3, 4, 6)
    out = sliding_window_predict(model_fn, image, num_classes=1, window=4, stride=2, window_batch=2)
    # windows at x = 0, 2 predict 1 and 2: columns 0-1 -> 1, 2-3 -> 1.5, 4-5 -> 2
    assert out[0, 0, 0].tolist() == [1.0, 1.0, 1.5, 1.5, 2.0, 2.0]
    assert calls == [2]


def test_flip_tta_averages_flipped_predictions():
    def model_fn(x):
        columns = torch.arange(x.shape[-1], dtype=torch.float32)
        return columns.expand(x.shape[0], 1, x.shape[2], x.shape[3]).clone()

    image = torch.zeros(1, 3, 2, 4)
    out = sliding_window_predict(model_fn, image, num_classes=1, window=4, stride=4, flip_tta=True)
    # ttach's "lr": identity [0,1,2,3], h-flip undone [3,2,1,0], v-flip [0,1,2,3], both
    # [3,2,1,0]: mean of the four
    expected = torch.tensor([0 + 3 + 0 + 3, 1 + 2 + 1 + 2, 2 + 1 + 2 + 1, 3 + 0 + 3 + 0]) / 4.0
    assert torch.allclose(out[0, 0, 0], expected)


def test_rejects_wrong_model_output():
    def model_fn(x):
        return torch.zeros(x.shape[0], 2, 3, 3)

    with pytest.raises(ValueError, match="model_fn returned"):
        sliding_window_predict(model_fn, torch.zeros(1, 3, 8, 8), num_classes=2, window=4, stride=4)


def test_pad_border_is_geoseg_test_patches_by_hand():
    # 5 x 7 image, 4 x 4 windows every 4: padded to 8 x 8, four windows that do not overlap
    image = torch.arange(35, dtype=torch.float32).reshape(1, 1, 5, 7).expand(1, 3, 5, 7)
    seen = []

    def model_fn(batch):  # logits = the window's mean of channel 0, and the pixel itself
        seen.append(batch[:, 0].clone())
        mean = batch[:, :1].mean(dim=(-2, -1), keepdim=True).expand_as(batch[:, :1])
        return torch.cat([mean, batch[:, :1]], dim=1)

    out = sliding_window_predict(
        model_fn, image, num_classes=2, window=4, stride=4, window_batch=8, border="pad"
    )
    assert out.shape == (1, 2, 5, 7)
    torch.testing.assert_close(out[0, 1], image[0, 0])  # no window overlaps: pixels unchanged
    black = -0.485 / 0.229  # channel 0 of an RGB 0 pixel after ImageNet normalisation
    padded = torch.full((8, 8), black)
    padded[:5, :7] = image[0, 0]
    windows = [padded[y : y + 4, x : x + 4] for y in (0, 4) for x in (0, 4)]
    torch.testing.assert_close(seen[0], torch.stack(windows))
    torch.testing.assert_close(out[0, 0, 4, 6], windows[3].mean())  # bottom-right: half padding
    clamped = sliding_window_predict(model_fn, image, num_classes=2, window=4, stride=4)
    assert not torch.allclose(clamped[0, 0], out[0, 0])  # clamp: other windows, other means
    with pytest.raises(ValueError, match="border must be one of"):
        sliding_window_predict(model_fn, image, num_classes=2, window=4, stride=4, border="x")


def test_rejects_an_image_without_a_batch_axis():
    def model_fn(x):
        return torch.zeros(x.shape[0], 2, x.shape[2], x.shape[3])

    for shape in [(3, 8, 8), (1, 1, 3, 8, 8)]:
        with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
            sliding_window_predict(model_fn, torch.zeros(shape), num_classes=2, window=4, stride=4)
