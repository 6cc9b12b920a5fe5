"""Diagnosis of a trained BTDNet: area-matched map IoU, stream IoU, gradient norms, gaps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from btdnet.ablation.diagnosis import category_gaps, gradient_norms, map_iou, mask_iou


def _truth() -> torch.Tensor:
    truth = torch.zeros(1, 8, 8)
    truth[0, 0:4, 0:4] = 1  # the top-left 2x2 cells of a 4x4 map
    return truth


def test_a_map_that_ranks_the_target_first_scores_one():
    correlation = torch.zeros(1, 1, 4, 4)
    correlation[0, 0, 0:2, 0:2] = 5.0
    assert map_iou(correlation, _truth()).tolist() == [1.0]


def test_the_map_is_read_area_matched_not_at_a_threshold():
    # every logit below 0 (a sigmoid threshold would select nothing), but ranked right
    correlation = torch.full((1, 1, 4, 4), -9.0)
    correlation[0, 0, 0:2, 0:2] = -3.0
    assert map_iou(correlation, _truth()).tolist() == [1.0]
    # the 4 highest cells overlap the target in 2 of its 4: IoU = 2 / 6
    shifted = torch.zeros(1, 1, 4, 4)
    shifted[0, 0, 0:2, 1:3] = 5.0
    assert map_iou(shifted, _truth()).tolist() == [pytest.approx(2 / 6)]


def test_a_target_that_covers_no_cell_is_not_scored():
    truth = torch.zeros(1, 8, 8)
    truth[0, 0, 0] = 1  # a quarter of a cell's area at most
    assert math.isnan(map_iou(torch.randn(1, 1, 4, 4), truth).item())


def test_mask_iou_counts_two_empty_masks_as_agreeing():
    a = torch.tensor([[[True, False], [False, False]], [[False, False], [False, False]]])
    b = torch.tensor([[[True, True], [False, False]], [[False, False], [False, False]]])
    assert mask_iou(a, b).tolist() == [0.5, 1.0]


def test_gradient_norms_per_module_group():
    from btdnet import build_model
    from tests.btdnet.models.test_model_btdnet import make_batch

    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, image_size=64, use_dmols=False)
    batch = make_batch(64)
    batch["mask"] = batch.pop("targets")
    for p in model.decoder.parameters():
        p.requires_grad_(False)
    torch.manual_seed(1)  # the same dropout masks in both passes
    norms = gradient_norms(model, [batch])
    assert all(p.grad is None for p in model.parameters())  # cleared afterwards
    assert set(norms) == {
        "image_encoder",
        "text_encoder",
        "fusions.0",
        "fusions.1",
        "fusions.2",
        "fusions.3",
    }  # fmt: skip  (the frozen decoder has no gradient)
    # the norm is the L2 norm of the group's gradients, recomputed by hand
    model.zero_grad()
    torch.manual_seed(1)
    out = model(
        batch["pixel_values"], batch["input_ids"], batch["attention_mask"], targets=batch["mask"]
    )
    out.loss.backward()
    by_hand = sum(float(p.grad.square().sum()) for p in model.fusions[2].parameters()) ** 0.5
    assert norms["fusions.2"] == pytest.approx(by_hand, rel=1e-5)


def test_category_gaps_average_seeds_and_sort_by_size_of_gap():
    results = [
        {"variant": "a", "seed": 0, "per_category": {"ship": 50.0, "car": 10.0}},
        {"variant": "a", "seed": 1, "per_category": {"ship": 60.0, "car": 20.0}},
        {"variant": "b", "seed": 0, "per_category": {"ship": 54.0, "car": 40.0, "tank": 1.0}},
        {"variant": "c", "seed": 0, "per_category": {"ship": 0.0}},
    ]
    gaps = category_gaps(results, "a", "b")
    assert list(gaps) == ["car", "ship"]  # |15 - 40| > |55 - 54|; tank only in b
    assert gaps["car"] == {"a": 15.0, "b": 40.0, "gap": -25.0}
    assert gaps["ship"]["gap"] == pytest.approx(1.0)


def test_the_command_diagnoses_a_checkpoint(tmp_path: Path):
    from referring_fixtures import write_rrsisd_fixture

    from btdnet import build_model
    from btdnet.ablation.diagnose_cli import main

    write_rrsisd_fixture(tmp_path / "data")
    torch.manual_seed(0)
    build_model("tiny", pretrained=False).save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    argv = ["--checkpoint", str(tmp_path / "model"), "--data-root", str(tmp_path / "data")]
    assert main([*argv, "--split", "train", "--out", str(out)]) == 0
    report = json.loads((out / "diagnosis.json").read_text())["checkpoint"]
    assert report["samples"] == 3 and len(report["map_iou"]) == 4
    assert set(report["gradient_norms"]) >= {"image_encoder", "decoder", "fusions.0"}
    assert (out / "diagnosis.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # an output folder that is a link is refused in one line, nothing written through it
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link").symlink_to(elsewhere)
    assert main([*argv, "--split", "train", "--out", str(tmp_path / "link")]) == 1
    assert list(elsewhere.iterdir()) == []
