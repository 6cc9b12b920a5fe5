"""The presence rule (``btdnet.presence``) is one rule: evaluation, the predictor, scene rows,
the web service's jobs and the calibration answer the same at the same threshold, and a call's
threshold is an argument that no other call sees."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from btdnet.evaluation.presence_calibration import PresenceRow, rows_at_threshold
from btdnet.evaluation.referring_eval import answer_logits
from btdnet.models import build_model
from btdnet.models.btdnet import BTDNetOutput
from btdnet.predict.predictor import Predictor
from btdnet.predict.scene.rows import RowRunner
from btdnet.presence import DEFAULT_PRESENCE_THRESHOLD, present_answer
from btdnet.raster.image_io import LoadedImage
from btdnet.serve.service import InferenceService, Job

# sigmoid(0) is exactly 0.5: the middle sample sits on the default threshold ("present": >=).
LOGITS = (-1e-3, 0.0, 1e-3, 2.0)
AT_DEFAULT = [False, True, True, True]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny", pretrained=False, training=False)


class FixedPresence(nn.Module):
    """Target everywhere; the presence logit of batch item i is ``LOGITS[i]``. ``barrier``:
    every forward pass waits there (two calls are then inside the model at the same time)."""

    def __init__(self, tiny: nn.Module, barrier: threading.Barrier | None = None) -> None:
        super().__init__()
        self.config = tiny.config
        self.tokenizer = tiny.tokenizer
        self.presence_head = nn.Identity()  # the predictor's "has a presence head"
        self.barrier = barrier
        self.seen_thresholds: list[float] = []
        self.predictor: Predictor | None = None

    def forward(self, pixel_values, input_ids, attention_mask) -> BTDNetOutput:
        if self.predictor is not None:
            self.seen_thresholds.append(self.predictor.presence_threshold)
        if self.barrier is not None:
            self.barrier.wait()
        count, side = pixel_values.shape[0], pixel_values.shape[-1]
        logits = torch.full((count, 1, side, side), 5.0)
        return BTDNetOutput(
            target_logits=logits,
            background_logits=-logits,
            presence_logits=torch.tensor(LOGITS[:count]),
        )


def _predictor(model: nn.Module, **kwargs) -> Predictor:
    predictor = Predictor(model, device="cpu", **kwargs)
    predictor.set_image(np.full((24, 20, 3), 90, dtype=np.uint8))
    return predictor


def test_every_path_answers_alike_at_the_same_threshold(tiny) -> None:
    model = FixedPresence(tiny)
    predictor = _predictor(model)
    assert predictor.presence_threshold == DEFAULT_PRESENCE_THRESHOLD
    texts = ["a", "b", "c", "d"]
    predicted = [p.present for p in predictor.predict(texts)]
    output = model(torch.zeros(4, 3, 8, 8), None, None)
    on_output = output.present().tolist()
    evaluated = [bool((answer_logits(output)[i] > 0).any()) for i in range(4)]
    tokens = predictor.tokenize(["a"])
    runner = RowRunner(predictor, None, None, tokens[0], tokens[1], 4, predictor.presence_threshold)
    _, in_scene = runner.forward(np.zeros((4, 16, 16, 3), dtype=np.uint8))
    served = [p.present for p in Job(image=None, texts=tuple(texts)).run(_IgnoreImage(predictor))]
    calibrated = []
    for logit in LOGITS:  # N_acc is 100 when a no-target sample is answered empty
        row = PresenceRow(0, 4, 4, True, float(torch.sigmoid(torch.tensor(logit))))
        calibrated.append(
            rows_at_threshold([row], DEFAULT_PRESENCE_THRESHOLD).compute()["N_acc"] == 0
        )
    assert predicted == on_output == evaluated == in_scene.tolist() == served == calibrated
    assert predicted == AT_DEFAULT
    # Another threshold moves every path the same way.
    strict = [p.present for p in predictor.predict(texts, presence_threshold=0.6)]
    assert strict == output.present(0.6).tolist() == [False, False, False, True]
    assert [bool((answer_logits(output, 0.6)[i] > 0).any()) for i in range(4)] == strict


class _IgnoreImage:
    """A predictor whose ``set_image`` keeps the current image (a Job sets one per request)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def set_image(self, image) -> None:
        pass

    def predict(self, texts, **kwargs):
        return self.predictor.predict(texts, **kwargs)


def test_two_calls_at_once_keep_their_own_threshold(tiny) -> None:
    """Both calls are inside the model together: a threshold stored on the shared predictor
    for one call would be the other's when the answers are read."""
    model = FixedPresence(tiny, barrier=threading.Barrier(2, timeout=20))
    predictor = _predictor(model)
    with ThreadPoolExecutor(max_workers=2) as pool:
        strict = pool.submit(predictor.predict, ["a", "b", "c", "d"], presence_threshold=0.9)
        lenient = pool.submit(predictor.predict, ["a", "b", "c", "d"], presence_threshold=0.1)
        strict_answer, lenient_answer = strict.result(), lenient.result()
    assert [p.present for p in strict_answer] == [False, False, False, False]
    assert [p.present for p in lenient_answer] == [True, True, True, True]
    assert predictor.presence_threshold == DEFAULT_PRESENCE_THRESHOLD


def test_the_service_never_sets_the_shared_predictor_threshold(tiny) -> None:
    model = FixedPresence(tiny)
    predictor = Predictor(model, device="cpu", presence_threshold=0.3)
    model.predictor = predictor
    service = InferenceService(predictor)
    image = np.full((24, 20, 3), 90, dtype=np.uint8)
    loaded = LoadedImage(path=Path("a.png"), pixels=image)
    strict = service.submit(Job(image=loaded, texts=("a", "b", "c", "d"), presence_threshold=0.9))
    default = service.submit(Job(image=loaded, texts=("a", "b", "c", "d")))
    strict_answer, default_answer = strict.result(), default.result()
    service.close()
    assert [p.present for p in strict_answer] == [False, False, False, False]
    assert [p.present for p in default_answer] == [True, True, True, True]
    assert model.seen_thresholds == [0.3, 0.3]  # during both jobs, the predictor's own


@pytest.mark.parametrize(
    ("head_says", "area", "present"),
    [(True, 1, True), (True, 0, False), (False, 5, False), (False, 0, False), (None, 5, None)],
)
def test_an_answer_is_present_only_when_the_head_says_so_and_the_mask_has_pixels(
    head_says, area, present
) -> None:
    """The head saying present over an empty mask (pixels all below 0.5) is "not found"."""
    assert present_answer(head_says, area) is present


def test_a_threshold_is_checked_at_both_ends_of_zero_to_one() -> None:
    from btdnet.presence import check_presence_threshold

    assert check_presence_threshold(0) == 0.0 and check_presence_threshold(1) == 1.0
    assert check_presence_threshold("0.25") == 0.25
    for wrong in (-1e-9, 1.000001, float("nan")):
        with pytest.raises(ValueError, match="presence_threshold must lie in"):
            check_presence_threshold(wrong)


def test_the_threshold_comes_from_the_call_then_the_model_then_the_default() -> None:
    from types import SimpleNamespace

    from btdnet.presence import model_presence_threshold, resolve_presence_threshold

    saved = SimpleNamespace(config=SimpleNamespace(presence_threshold=0.7))
    assert model_presence_threshold(saved) == 0.7
    assert model_presence_threshold(SimpleNamespace(module=saved)) == 0.7  # DDP-wrapped
    assert model_presence_threshold(SimpleNamespace(config=SimpleNamespace())) == 0.5
    assert model_presence_threshold(object()) == DEFAULT_PRESENCE_THRESHOLD == 0.5
    assert resolve_presence_threshold(None, saved) == 0.7
    assert resolve_presence_threshold(0.2, saved) == 0.2
    assert resolve_presence_threshold(0.0, saved) == 0.0  # zero is a threshold, not "none"
    with pytest.raises(ValueError, match="must lie in"):
        resolve_presence_threshold(1.5, saved)


def test_the_presence_note_and_the_rule_without_a_head() -> None:
    from types import SimpleNamespace

    from btdnet.presence import (
        NO_PRESENCE_HEAD,
        is_present,
        output_present,
        presence_note,
        presence_probability,
    )

    assert presence_note(None) == {"present_note": NO_PRESENCE_HEAD}
    assert presence_note(False) == {} and presence_note(True) == {}
    assert is_present(0.5, 0.5) and not is_present(0.4999, 0.5)
    headless = SimpleNamespace(target_logits=torch.full((3, 1, 2, 2), -9.0))
    assert presence_probability(headless) is None
    assert output_present(headless, 0.99).tolist() == [True, True, True]
    logits = torch.tensor([[0.0], [-2.0]])  # (B, 1): sigmoid 0.5 and 0.119
    headed = SimpleNamespace(target_logits=torch.zeros(2, 1, 2, 2), presence_logits=logits)
    probability = presence_probability(headed)
    assert probability.shape == (2,)
    torch.testing.assert_close(probability, torch.sigmoid(torch.tensor([0.0, -2.0])))
    assert output_present(headed, 0.5).tolist() == [True, False]
    assert output_present(headed, 0.1).tolist() == [True, True]
