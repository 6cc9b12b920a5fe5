"""The Predictor API on a random-weight tiny BTDNet checkpoint."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from btdnet.predict import CheckpointError, Prediction, Predictor, TextTruncatedWarning
from btdnet.predict.predictor import resolve_device, summarise, upsample_probability

TEXTS = ["the red roof", "a small car", "the long road on the left side"]


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_pretrained(checkpoint, device="cpu", batch_size=2)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)


def check_prediction(prediction: Prediction, size: tuple[int, int]) -> None:
    assert prediction.mask.shape == size and prediction.mask.dtype == np.bool_
    assert prediction.probability.shape == size and prediction.probability.dtype == np.float32
    assert prediction.probability.min() >= 0.0 and prediction.probability.max() <= 1.0
    np.testing.assert_array_equal(prediction.mask, prediction.probability > 0.5)
    assert prediction.area == int(prediction.mask.sum())
    if prediction.area == 0:
        assert prediction.bbox is None and prediction.score == 0.0
    else:
        x1, y1, x2, y2 = prediction.bbox
        rows, cols = np.nonzero(prediction.mask)
        assert (x1, y1, x2, y2) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        expected = prediction.probability[prediction.mask].mean()
        assert prediction.score == pytest.approx(float(expected), abs=1e-6)


def reference_probability(model, image: np.ndarray, text: str) -> np.ndarray:
    """The predictor's answer written out independently: PIL bilinear resize to the model's
    square input, ImageNet mean/std by hand, the text padded to ``max_tokens``, the model's
    joint logit, its sigmoid, then torch's bilinear (align_corners=False) back to (H, W)."""
    side, tokens = model.config.image_size, model.config.max_tokens
    square = Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR)
    rgb = np.asarray(square, dtype=np.float64) / 255.0
    rgb = (rgb - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]  # (S, S, 3)
    pixels = torch.from_numpy(rgb.transpose(2, 0, 1)).float()[None]  # (1, 3, S, S)
    encoded = model.tokenizer(text, padding="max_length", max_length=tokens, truncation=True)
    ids = torch.tensor([encoded["input_ids"]])  # (1, T)
    attention = torch.tensor([encoded["attention_mask"]])  # (1, T)
    with torch.no_grad():
        logits = model(pixels, ids, attention).target_logits  # (1, 1, S, S)
    size = image.shape[:2]
    up = F.interpolate(torch.sigmoid(logits), size=size, mode="bilinear", align_corners=False)
    return up[0, 0].numpy()


def test_prediction_at_original_size(predictor, image):
    predictor.set_image(image)
    assert predictor.original_size == (37, 53)
    prediction = predictor.predict("the red roof")
    assert isinstance(prediction, Prediction) and prediction.text == "the red roof"
    assert not prediction.truncated
    check_prediction(prediction, (37, 53))
    expected = reference_probability(predictor.model, image, "the red roof")
    np.testing.assert_allclose(prediction.probability, expected, atol=1e-5)
    assert np.ptp(expected) > 1e-3  # the reference varies: a constant answer could not match


def test_batched_equals_one_by_one(predictor, image):
    predictor.set_image(image)
    batched = predictor.predict(TEXTS)  # batches of 2 and 1
    assert [p.text for p in batched] == TEXTS
    for text, together in zip(TEXTS, batched):
        alone = predictor.predict(text)
        np.testing.assert_allclose(together.probability, alone.probability, atol=1e-5)
        certain = np.abs(alone.probability - 0.5) > 1e-4
        np.testing.assert_array_equal(together.mask[certain], alone.mask[certain])
        check_prediction(together, (37, 53))
    other_batch = predictor.predict(TEXTS, batch_size=3)
    for first, second in zip(batched, other_batch):
        np.testing.assert_allclose(first.probability, second.probability, atol=1e-5)


def test_eval_mode_is_deterministic(predictor, image):
    predictor.set_image(image)
    assert not predictor.model.training
    first = predictor.predict("the building")
    second = predictor.predict("the building")
    np.testing.assert_array_equal(first.probability, second.probability)


def test_path_pil_and_array_inputs_agree(predictor, image, tmp_path):
    Image.fromarray(image).save(tmp_path / "scene.png")
    predictor.set_image(image)
    from_array = predictor.predict("a small car").probability
    predictor.set_image(Image.fromarray(image))
    np.testing.assert_array_equal(predictor.predict("a small car").probability, from_array)
    predictor.set_image(tmp_path / "scene.png")
    np.testing.assert_array_equal(predictor.predict("a small car").probability, from_array)
    predictor.set_image(image[:, :, 0])  # grey (H, W) array
    check_prediction(predictor.predict("a small car"), (37, 53))


def test_large_and_tall_images_come_back_full_size(predictor):
    tall = np.random.default_rng(1).integers(0, 256, (301, 97, 3), dtype=np.uint8)
    predictor.set_image(tall)
    prediction = predictor.predict("the field")
    check_prediction(prediction, (301, 97))
    # enlarged 3x in height and 1x in width from the model's 96 x 96: rows and columns are
    # not interchangeable
    expected = reference_probability(predictor.model, tall, "the field")
    np.testing.assert_allclose(prediction.probability, expected, atol=1e-5)


def test_empty_texts_raise(predictor, image):
    predictor.set_image(image)
    with pytest.raises(ValueError, match="the text is empty"):
        predictor.predict("   ")
    with pytest.raises(ValueError, match="text 1 is empty"):
        predictor.predict(["a car", "", "a road"])
    assert predictor.predict([]) == []


def test_long_text_is_truncated_with_a_warning(predictor, image):
    predictor.set_image(image)
    limit = predictor.max_tokens
    long_text = "the small white car parked next to the long grey building " * 4
    with pytest.warns(TextTruncatedWarning, match=f"limit of {limit}"):
        prediction = predictor.predict(long_text)
    assert prediction.truncated
    with warnings.catch_warnings():
        warnings.simplefilter("error", TextTruncatedWarning)
        assert not predictor.predict("a car").truncated


def test_predict_needs_an_image(checkpoint):
    fresh = Predictor.from_pretrained(checkpoint, device="cpu")
    with pytest.raises(RuntimeError, match="set_image"):
        fresh.predict("a car")


def test_bf16_autocast_runs(checkpoint, image):
    bf16 = Predictor.from_pretrained(checkpoint, device="cpu", amp="bf16")
    bf16.set_image(image)
    prediction = bf16.predict("the red roof")
    check_prediction(prediction, (37, 53))
    # bfloat16 keeps 8 bits of mantissa: close to the float32 answer, but not that answer
    # (which would mean autocast never ran)
    expected = reference_probability(bf16.model, image, "the red roof")
    difference = np.abs(prediction.probability - expected)
    assert difference.max() < 0.05 and difference.max() > 1e-5, difference.max()


def test_bad_device_and_amp_are_refused(checkpoint):
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown amp mode"):
        Predictor.from_pretrained(checkpoint, device="cpu", amp="int4")


def test_checkpoint_errors(tmp_path, checkpoint):
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        Predictor.from_pretrained(tmp_path / "nothing")
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((checkpoint / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"no model\.safetensors"):
        Predictor.from_pretrained(no_weights)
    bicor = tmp_path / "bicor"
    bicor.mkdir()
    config = json.loads((checkpoint / "config.json").read_text())
    (bicor / "config.json").write_text(json.dumps({**config, "model_type": "bicor"}))
    (bicor / "model.safetensors").write_bytes((checkpoint / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="BiCoR-Seg closed-set"):
        Predictor.from_pretrained(bicor)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((checkpoint / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot load the checkpoint") as info:
        Predictor.from_pretrained(broken)
    assert "\n" not in str(info.value)


def test_summarise_box_score_and_empty_mask():
    probability = np.zeros((6, 8), np.float32)
    probability[1:3, 2:5] = 0.8
    probability[2, 4] = 1.0
    result = summarise("a", probability, truncated=False)
    assert result.bbox == (2, 1, 5, 3) and result.area == 6
    assert result.score == pytest.approx((5 * 0.8 + 1.0) / 6)
    empty = summarise("b", np.full((4, 4), 0.5, np.float32), truncated=True)
    assert empty.area == 0 and empty.bbox is None and empty.score == 0.0 and empty.truncated


def test_only_an_mps_device_is_checked_against_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for name in ("mps", "mps:0"):
        with pytest.raises(ValueError, match=f"device '{name}' requested but MPS is not available"):
            resolve_device(name)
    # other device types are handed to torch as named, never refused for MPS's sake (the
    # type names sort on both sides of "mps": cpu, meta < mps < xla, xpu)
    for name in ("meta", "xla", "xpu"):
        assert resolve_device(name) == torch.device(name)


def words_of_tokens(tokenizer, count: int) -> str:
    """A text of exactly ``count`` tokens, special tokens included ("car" is one token)."""
    for words in range(1, count + 1):
        text = " ".join(["car"] * words)
        if len(tokenizer(text)["input_ids"]) == count:
            return text
    raise AssertionError(f"no text of {count} tokens")


def test_a_text_of_exactly_the_token_limit_is_not_truncated(predictor, image):
    predictor.set_image(image)
    limit = predictor.max_tokens
    at_limit = words_of_tokens(predictor.model.tokenizer, limit)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TextTruncatedWarning)
        assert not predictor.predict(at_limit).truncated
    with pytest.warns(TextTruncatedWarning, match=f"has {limit + 1} tokens"):
        assert predictor.predict(at_limit + " car").truncated


@pytest.mark.parametrize("size", [(37, 53), (7, 5), (16, 40), (3, 3)])
def test_upsampling_is_torch_bilinear_without_aligned_corners(size):
    # a high-contrast map whose values differ from pixel to pixel: half a pixel of shift in the
    # source coordinates moves every interpolated value
    small = np.random.default_rng(1).random((8, 10)).astype(np.float32)
    expected = F.interpolate(
        torch.from_numpy(small)[None, None], size=size, mode="bilinear", align_corners=False
    )[0, 0].numpy()
    got = upsample_probability(small, *size, band=4)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_each_prompt_of_a_batch_gets_its_own_correlation_maps(predictor, image):
    predictor.set_image(image)
    batched = predictor.predict(TEXTS, batch_size=3)  # one forward pass for all three
    for text, together in zip(TEXTS, batched):
        alone = predictor.predict(text)
        assert len(together.correlation) == len(alone.correlation) > 0
        for got, want in zip(together.correlation, alone.correlation):
            np.testing.assert_allclose(got, want, atol=1e-5)
    # the prompts' maps differ, so a batch answering prompt 0's maps for all would show
    assert not np.allclose(batched[0].correlation[0], batched[2].correlation[0], atol=1e-4)


def test_batch_size_is_checked_at_the_boundary(predictor, image, checkpoint):
    predictor.set_image(image)
    one = predictor.predict(TEXTS, batch_size=1)  # the smallest batch is fine
    assert [p.text for p in one] == TEXTS
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        predictor.predict(TEXTS, batch_size=0)
    for wrong in (True, 2.0, "2"):
        with pytest.raises(TypeError, match="batch_size must be an int"):
            predictor.predict(TEXTS, batch_size=wrong)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Predictor(predictor.model, device="cpu", batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        Predictor(predictor.model, device="cpu", batch_size=False)
    assert Predictor(predictor.model, device="cpu", batch_size=np.int64(1)).batch_size == 1


def test_a_text_that_is_not_a_string_is_refused_by_position(predictor, image):
    predictor.set_image(image)
    with pytest.raises(TypeError, match="text 1 is a int, not a string"):
        predictor.predict(["a car", 7])


class _SidedModel(torch.nn.Module):
    def __init__(self, image_size):
        super().__init__()
        self.config = type("Config", (), {"image_size": image_size, "max_tokens": 8})()


def test_the_model_input_must_be_square():
    for side, want in ((32, 32), ((48, 48), 48), ([8, 8], 8)):
        assert Predictor(_SidedModel(side), device="cpu").input_side == want
    for wrong in ((32, 48), (32, 32, 32), (32,)):
        with pytest.raises(ValueError, match="square model input"):
            Predictor(_SidedModel(wrong), device="cpu")


def test_image_arrays_and_modes_are_read_as_rgb(predictor):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    predictor.set_image(rgb)
    want = predictor._pixel_values.clone()
    assert predictor.original_size == (9, 11)
    # an RGBA image (array or PIL) drops its alpha band; a palette image converts to RGB
    alpha = np.dstack([rgb, rng.integers(0, 256, (9, 11), dtype=np.uint8)])
    predictor.set_image(alpha)
    torch.testing.assert_close(predictor._pixel_values, want)
    predictor.set_image(Image.fromarray(alpha, "RGBA"))
    torch.testing.assert_close(predictor._pixel_values, want)
    # a single band is grey: the same as three equal bands
    grey = rgb[:, :, 0]
    predictor.set_image(grey)
    from_grey = predictor._pixel_values.clone()
    predictor.set_image(np.dstack([grey, grey, grey]))
    torch.testing.assert_close(from_grey, predictor._pixel_values)
    predictor.set_image(Image.fromarray(grey, "L"))
    torch.testing.assert_close(from_grey, predictor._pixel_values)
    for wrong in ((9, 11, 2), (9, 11, 5), (9,)):
        with pytest.raises(ValueError, match=r"expected an \(H, W\)"):
            predictor.set_image(np.zeros(wrong, np.uint8))
    for empty in ((0, 11, 3), (9, 0, 3)):
        with pytest.raises(ValueError, match="the image array is empty"):
            predictor.set_image(np.zeros(empty, np.uint8))
    with pytest.raises(TypeError, match="not list"):
        predictor.set_image([[1, 2]])


def test_amp_words_map_to_their_autocast_dtype(predictor):
    import contextlib

    words = {None: None, "no": None, "none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    for word, dtype in words.items():
        chosen = Predictor(predictor.model, device="cpu", amp=word)
        assert chosen.amp_dtype == dtype, word
        context = chosen.autocast()
        if dtype is None:
            assert isinstance(context, contextlib.nullcontext)
        else:
            assert isinstance(context, torch.autocast) and context.fast_dtype == dtype
    with pytest.raises(ValueError, match="unknown amp mode 'int8'; use one of"):
        Predictor(predictor.model, device="cpu", amp="int8")
