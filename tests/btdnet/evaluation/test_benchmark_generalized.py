"""Generalized referring in the benchmark: evaluate_referring with and without a presence head,
prediction files where an all-zero PNG means "no target", and the CLI on --dataset grefs.

Fixture (tests/btdnet/data/test_data_grefs.py), val split at the original size 23x31: sample 2-3 is
no-target, sample 3-4 targets the 5x9 block at rows 15-20, cols 20-29 (45 px).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from btdnet.data import build_referring_dataset
from btdnet.evaluation import evaluate_referring, prediction_filename, write_prediction
from btdnet.evaluation.prediction_files import score_prediction_files
from tests.btdnet.data.test_data_grefs import H, W, write_grefs
from tests.btdnet.evaluation.test_benchmark import _run_benchmark


class BlockModel(nn.Module):
    """Marks the fixture's block at the original size; presence logits in dataset order."""

    def __init__(self, presence: list[float] | None) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.presence = presence
        self.presence_head = None if presence is None else nn.Identity()
        self.config = SimpleNamespace(presence_threshold=0.5)
        self.calls = 0

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        batch = pixel_values.shape[0]
        block = -torch.ones(batch, 1, H, W)
        block[:, :, 15:20, 20:29] = 1.0
        out = SimpleNamespace(target_logits=self.scale * block, presence_logits=None)
        if self.presence is not None:
            out.presence_logits = torch.tensor(self.presence[self.calls : self.calls + batch])
        self.calls += batch
        return out


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    root = tmp_path_factory.mktemp("grefs")
    write_grefs(root)
    return root, build_referring_dataset("grefs", root, "val", None, image_size=32)


def _evaluate(dataset, model, **kwargs) -> dict:
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    items = [{**dataset[i], "input_ids": torch.zeros(3, dtype=torch.long)} for i in range(2)]
    for item in items:
        item["attention_mask"] = torch.ones(3, dtype=torch.long)
    loader = DataLoader(items, batch_size=1)
    return evaluate_referring(
        model, loader, accelerator, protocol="original", dataset=dataset, show_progress=False,
        **kwargs,
    )  # fmt: skip


def _check(result: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key


def test_presence_head_right_on_both(val):
    _, dataset = val
    result = _evaluate(dataset, BlockModel([-3.0, 3.0]))
    _check(result, {"gIoU": 100, "cIoU": 100, "N_acc": 100, "T_acc": 100, "oIoU": 100})
    assert result["samples"] == 2 and result["samples_no_target"] == 1


def test_threshold_turns_both_answers_into_no_target(val):
    _, dataset = val
    result = _evaluate(dataset, BlockModel([-3.0, 3.0]), presence_threshold=0.99)
    # no-target right (IoU 1), targeted answered empty (IoU 0, U = 45): cIoU 0 / 45
    _check(result, {"gIoU": 50, "cIoU": 0, "N_acc": 100, "T_acc": 0, "oIoU": 0})


def test_further_thresholds_score_the_same_forward_passes(val):
    _, dataset = val
    model = BlockModel([-3.0, 3.0])
    result = _evaluate(dataset, model, also_at_thresholds=[0.99, 0.01])
    assert model.calls == 2  # one pass over the two samples serves all three thresholds
    _check(result, {"gIoU": 100, "N_acc": 100, "T_acc": 100})  # at the model's own 0.5
    _check(result["at_thresholds"][0.99], {"gIoU": 50, "cIoU": 0, "N_acc": 100, "T_acc": 0})
    # at 0.01 both answer "present": the no-target sample painted (IoU 0, U += 45)
    _check(result["at_thresholds"][0.01], {"gIoU": 50, "cIoU": 50, "N_acc": 0, "T_acc": 100})
    alone = _evaluate(dataset, BlockModel([-3.0, 3.0]), presence_threshold=0.99)
    assert result["at_thresholds"][0.99] == alone
    # The model's own threshold asked again: the same numbers as the result itself.
    again = _evaluate(dataset, BlockModel([-3.0, 3.0]), also_at_thresholds=[0.5])
    assert again.pop("at_thresholds") == {0.5: again}


def test_model_without_head_always_paints(val):
    _, dataset = val
    result = _evaluate(dataset, BlockModel(None))
    # no-target answered with the 45-px block: IoU 0 and U += 45; targeted IoU 1
    _check(result, {"gIoU": 50, "cIoU": 50, "N_acc": 0, "T_acc": 100, "oIoU": 100})


def _write_predictions(folder: Path) -> None:
    write_prediction(np.zeros((H, W), bool), folder / prediction_filename("2-3"))  # "no target"
    half = np.zeros((H, W), bool)
    half[15:20, 20:25] = True  # 25 of the 45 block pixels
    write_prediction(half, folder / prediction_filename("3-4"))


def test_all_zero_png_is_the_no_target_answer(val, tmp_path):
    _, dataset = val
    _write_predictions(tmp_path)
    result = score_prediction_files(dataset, tmp_path, "original")
    iou = 25 / 45
    expected = {"gIoU": 100 * (1 + iou) / 2, "cIoU": 100 * iou, "N_acc": 100, "T_acc": 100}
    _check(result, {**expected, "oIoU": 100 * iou, "Pr@0.5": 100, "Pr@0.6": 0})


def test_benchmark_cli_on_grefs(val, tmp_path):
    root, _ = val
    _write_predictions(tmp_path / "pred")
    completed = _run_benchmark(
        *("--predictions", str(tmp_path / "pred"), "--dataset", "grefs", "--root", str(root)),
        *("--split", "val", "--protocol", "original", "--json", str(tmp_path / "r.json")),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    data = json.loads((tmp_path / "r.json").read_text())
    assert (data["N_acc"], data["T_acc"], data["cIoU"]) == (100.0, 100.0, round(2500 / 45, 2))
    assert data["samples_no_target"] == 1 and data["dataset"] == "grefs"
    assert "| val | original | 2 | 1 | 1 |" in completed.stdout
    assert "gIoU" in completed.stdout and "no-target" in completed.stdout


def test_generalized_set_without_no_target_gives_gIoU_cIoU_and_na(val, tmp_path):
    """The fixture's train split: 0-0 targets the 42-px box, 1-1 and 1-2 the box and the
    45-px block (87 px). Answered with the box each: IoUs 1, 42/87, 42/87. ReLA's evaluator
    prints gIoU 65.52 and cIoU 58.33 (and writes 0 for N_acc and T_acc)."""
    from btdnet.evaluation import format_markdown

    root, _ = val
    train = build_referring_dataset("grefs", root, "train", None, image_size=32)
    box = np.zeros((H, W), bool)
    box[2:8, 3:10] = True
    for sample_id in ("0-0", "1-1", "1-2"):
        write_prediction(box, tmp_path / prediction_filename(sample_id))
    result = score_prediction_files(train, tmp_path, "original")
    assert round(result["gIoU"], 2) == 65.52 and round(result["cIoU"], 2) == 58.33
    assert result["gIoU"] == pytest.approx(100 * (1 + 2 * 42 / 87) / 3)
    assert result["cIoU"] == pytest.approx(100 * 126 / 216)
    assert result["N_acc"] is None and result["T_acc"] is None
    assert "no no-target expression" in result["N_acc_note"]
    text = format_markdown(result)
    assert "| train | original | 3 | 3 | 0 | 65.52 | 58.33 | n/a | n/a |" in text
    assert "N_acc n/a: the set has no no-target expression" in text
