"""Generalized referring at prediction time: Prediction.present/presence, the threshold, the
JSON fields of btdnet-predict and the "not found" overlay."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from btdnet.models import build_model
from btdnet.predict import Predictor
from btdnet.predict.cli import main
from btdnet.predict.overlay import caption_text
from btdnet.predict.predictor import summarise


def _presence_checkpoint(folder, presence_bias: float):
    """A tiny model whose mask is the whole image and whose presence logit is ``presence_bias``
    for every prompt (last layer's weights zeroed)."""
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, use_presence=True)
    with torch.no_grad():
        model.decoder.target_head.bias.add_(100.0)
        last = model.presence_head.mlp[-1]
        last.weight.zero_()
        last.bias.fill_(presence_bias)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def absent_checkpoint(tmp_path_factory):
    return _presence_checkpoint(tmp_path_factory.mktemp("absent"), -6.0)


@pytest.fixture(scope="module")
def even_checkpoint(tmp_path_factory):
    return _presence_checkpoint(tmp_path_factory.mktemp("even"), 0.0)  # presence exactly 0.5


IMAGE = np.random.default_rng(0).integers(0, 256, (29, 43, 3), dtype=np.uint8)


def test_no_target_answer_is_an_empty_mask(absent_checkpoint):
    predictor = Predictor.from_pretrained(absent_checkpoint, device="cpu")
    assert predictor.has_presence_head and predictor.presence_threshold == 0.5
    predictor.set_image(IMAGE)
    first, second = predictor.predict(["the red ship", "all the vehicles"])
    for prediction in (first, second):
        assert prediction.present is False
        assert prediction.presence == pytest.approx(float(torch.sigmoid(torch.tensor(-6.0))))
        assert not prediction.mask.any() and prediction.area == 0 and prediction.bbox is None
        assert prediction.score == 0.0
        assert prediction.probability.min() > 0.99  # the raw map is kept for inspection


def test_threshold_is_an_option(even_checkpoint):
    lenient = Predictor.from_pretrained(even_checkpoint, device="cpu", presence_threshold=0.4)
    lenient.set_image(IMAGE)
    found = lenient.predict("the tank")
    assert found.present and found.presence == pytest.approx(0.5)
    assert found.area == 29 * 43 and found.bbox == (0, 0, 43, 29)
    strict = Predictor.from_pretrained(even_checkpoint, device="cpu", presence_threshold=0.6)
    strict.set_image(IMAGE)
    assert not strict.predict("the tank").present
    default = Predictor.from_pretrained(even_checkpoint, device="cpu")
    default.set_image(IMAGE)
    assert default.predict("the tank").present  # 0.5 >= the default threshold 0.5
    with pytest.raises(ValueError, match="presence_threshold"):
        Predictor.from_pretrained(even_checkpoint, device="cpu", presence_threshold=2.0)


def test_model_without_head_cannot_say_present_or_absent(checkpoint):
    predictor = Predictor.from_pretrained(checkpoint, device="cpu", presence_threshold=0.99)
    assert not predictor.has_presence_head
    predictor.set_image(IMAGE)
    prediction = predictor.predict("the red roof")
    assert prediction.area > 0  # it marked something, and still does not claim it is there
    assert prediction.present is None and prediction.presence is None
    np.testing.assert_array_equal(prediction.mask, prediction.probability > 0.5)


def test_present_is_never_true_with_an_empty_mask():
    nothing = np.full((6, 8), 0.2, np.float32)  # the head says present, nothing is marked
    assert summarise("a", nothing, False, present=True, presence=0.9).present is False
    assert summarise("a", nothing, False, present=None).present is None  # no head
    some = nothing.copy()
    some[2, 3] = 0.8
    answer = summarise("a", some, False, present=True, presence=0.9)
    assert answer.present is True and answer.area == 1
    assert summarise("a", some, False, present=False, presence=0.1).area == 0


def test_caption_says_not_found():
    assert caption_text("the ship", found=False, score=0.0, presence=0.0312) == (
        "the ship  [not found, presence 0.03]"
    )
    assert caption_text("the ship", score=0.91, presence=0.8) == (
        "the ship  [score 0.91, presence 0.80]"
    )
    assert caption_text("the ship", score=0.5) == "the ship  [score 0.50]"


def test_cli_json_and_files(tmp_path, capsys, absent_checkpoint, checkpoint):
    image = tmp_path / "scene.png"
    Image.fromarray(IMAGE).save(image)
    code = main(
        [
            "--checkpoint", str(absent_checkpoint), "--image", str(image),
            "--text", "the red ship", "--out", str(tmp_path / "out"), "--device", "cpu",
        ]
    )  # fmt: skip
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert record["present"] is False and record["area"] == 0 and record["bbox"] is None
    assert record["presence"] == pytest.approx(0.0025, abs=1e-4)
    assert not np.asarray(Image.open(record["mask"])).any()
    overlay = np.asarray(Image.open(record["overlay"]))
    assert overlay.shape[1:] == (43 * 12, 3) and overlay.shape[0] > 29 * 12  # x12, caption above

    code = main(
        [
            "--checkpoint", str(absent_checkpoint), "--image", str(image),
            "--text", "the red ship", "--out", str(tmp_path / "low"), "--device", "cpu",
            "--presence-threshold", "0.001",
        ]
    )  # fmt: skip
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and record["present"] is True and record["area"] == 29 * 43

    code = main(
        [
            "--checkpoint", str(checkpoint), "--image", str(image), "--text", "the roof",
            "--out", str(tmp_path / "plain"), "--device", "cpu",
        ]
    )  # fmt: skip
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and record["present"] is None and record["presence"] is None
    assert record["present_note"] == "this model has no presence head: it cannot say absent"
