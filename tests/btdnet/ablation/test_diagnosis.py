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
    assert gaps["car"] == {
        "a": 15.0,
        "b": 40.0,
        "gap": -25.0,
        "spread": {"a": pytest.approx(50**0.5), "b": None},  # sample sd of 10, 20; one seed
        "seeds": {"a": 2, "b": 1},
    }
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


def test_chance_iou_is_the_expected_iou_of_a_map_that_ignores_the_target():
    from math import comb

    from btdnet.ablation.diagnosis import chance_iou

    truth = torch.zeros(2, 8, 8)
    truth[0, 0:4, 0:4] = 1  # 4 of 16 cells of a 4x4 map
    chance = chance_iou(truth, 4, 4)
    # by hand: the overlap X of 4 random cells with the 4 target cells is hypergeometric
    by_hand = sum(comb(4, x) * comb(12, 4 - x) / comb(16, 4) * x / (8 - x) for x in range(5))
    assert chance[0].item() == pytest.approx(by_hand)
    assert by_hand != pytest.approx(0.25 / 1.75, abs=0.01)  # the share formula would be wrong
    assert math.isnan(chance[1].item())  # no target cell: not scored
    # a random choice of k cells really scores that on average
    generator = torch.Generator().manual_seed(0)
    ious = [
        map_iou(torch.rand(1, 1, 4, 4, generator=generator), truth[:1]).item() for _ in range(4000)
    ]
    assert sum(ious) / len(ious) == pytest.approx(by_hand, abs=0.006)


def _checkpoint(root: Path, name: str, step: int, *, complete: bool = True) -> Path:
    from btdnet import build_model
    from btdnet.engine.checkpoints import COMPLETE_MARK, PROGRESS_FILE, STATE_DIR

    torch.manual_seed(step)
    folder = root / name
    build_model("tiny", pretrained=False).save_pretrained(folder)
    (folder / STATE_DIR).mkdir()
    (folder / STATE_DIR / PROGRESS_FILE).write_text(json.dumps({"global_step": step}))
    if complete:
        (folder / STATE_DIR / COMPLETE_MARK).write_text("ok\n")
    return folder


def test_run_checkpoints_are_ordered_by_step_and_skip_unfinished_ones(tmp_path: Path):
    from btdnet.ablation.diagnosis_curve import run_checkpoints
    from btdnet.errors import CheckpointError

    root = tmp_path / "run" / "checkpoints"
    root.mkdir(parents=True)
    late = _checkpoint(root, "a-late", 20)  # name order and step order disagree
    early = _checkpoint(root, "b-early", 10)
    _checkpoint(root, "c-unfinished", 30, complete=False)
    _checkpoint(root, "d.tmp", 40)
    (root / "last").symlink_to("a-late")
    assert run_checkpoints(tmp_path / "run") == [(10, early), (20, late)]
    assert run_checkpoints(root) == [(10, early), (20, late)]
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        run_checkpoints(tmp_path)


def test_the_command_diagnoses_every_checkpoint_of_a_run(tmp_path: Path, capsys):
    from referring_fixtures import write_rrsisd_fixture

    from btdnet.ablation.diagnose_cli import main
    from btdnet.ablation.diagnosis import chance_iou, diagnose
    from btdnet.engine.accelerator import make_accelerator
    from btdnet.evaluation.referring_eval import split_loader
    from btdnet.models import load_model

    write_rrsisd_fixture(tmp_path / "data")
    root = tmp_path / "run" / "checkpoints"
    root.mkdir(parents=True)
    second = _checkpoint(root, "epoch-0001", 7)
    first = _checkpoint(root, "epoch-0002", 3)  # saved under a later name, holds an earlier step
    out = tmp_path / "out"
    argv = ["--run", str(tmp_path / "run"), "--data-root", str(tmp_path / "data")]
    assert main([*argv, "--split", "train", "--out", str(out)]) == 0
    rows = json.loads((out / "over_training.json").read_text())["rows"]
    assert [(r["step"], r["checkpoint"]) for r in rows] == [(3, first.name), (7, second.name)]
    # each row is that checkpoint's own diagnosis (weights differ: the rows do too)
    for row, folder in zip(rows, (first, second)):
        model = load_model(folder, training=True)
        _, loader = split_loader(model, "rrsisd", tmp_path / "data", "train", 8, make_accelerator())
        expected = diagnose(model, loader, max_batches=8, keep_examples=0)
        assert row["map_iou"] == pytest.approx(expected["map_iou"], nan_ok=True)
        assert row["target_iou"] == pytest.approx(expected["target_iou"])
    assert (
        rows[0]["target_iou"] != rows[1]["target_iou"] or rows[0]["map_iou"] != rows[1]["map_iou"]
    )
    # the chance level is the fixture's own target share, stage by stage
    batch = next(iter(loader))
    truth = batch["mask"] != 0
    out_model = load_model(second, training=False)
    with torch.no_grad():
        maps = out_model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    for stage, correlation in enumerate(maps.correlation_maps):
        h, w = correlation.shape[-2:]
        values = chance_iou(truth, h, w)
        kept = values[~torch.isnan(values)]
        want = float(kept.mean()) if kept.numel() else None
        assert rows[1]["map_chance"][stage] == pytest.approx(want, nan_ok=True)
    assert (out / "over_training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "step 3: map IoU per stage" in capsys.readouterr().out
    # a folder without checkpoints: one line, exit 1
    assert (
        main(
            [
                "--run",
                str(tmp_path / "data"),
                "--data-root",
                str(tmp_path / "data"),
                "--out",
                str(tmp_path / "out2"),
            ]
        )
        == 1
    )


class _FixedAnswers(torch.nn.Module):
    """A stand-in model whose streams and maps are planted, so each measure is known by hand."""

    def __init__(self, background: torch.Tensor, maps: list[torch.Tensor]) -> None:
        super().__init__()
        self.decoder = torch.nn.Linear(1, 1)  # one group with a gradient
        self.background, self.maps = background, maps

    def forward(self, pixel_values, input_ids, attention_mask, targets=None):
        from types import SimpleNamespace

        b = pixel_values.shape[0]
        scale = self.decoder(torch.ones(1, 1))[0, 0]
        target = torch.full((b, 1, 8, 8), -5.0)
        target[:, :, 0:4, 0:4] = 5.0  # the target stream: exactly the truth
        return SimpleNamespace(
            target_logits=target + 0 * scale,
            background_logits=self.background.expand(b, 1, 8, 8),
            correlation_maps=[m.expand(b, 1, *m.shape[-2:]) for m in self.maps],
            loss=scale.square(),
        )


def test_the_background_streams_own_answer_and_the_samples_each_stage_scores():
    from btdnet.ablation.diagnosis import diagnose

    truth = torch.zeros(2, 8, 8, dtype=torch.long)
    truth[:, 0:4, 0:4] = 1  # 16 target pixels
    background = torch.full((1, 1, 8, 8), 5.0)
    background[..., 0:4, 0:2] = -5.0  # calls 8 of the 16 target pixels not-background ...
    background[..., 6:8, 6:8] = -5.0  # ... and 4 background pixels too
    fine = torch.zeros(1, 1, 4, 4)
    fine[..., 0:2, 0:2] = 1.0  # ranks the target's 4 cells first: IoU 1
    coarse = torch.zeros(1, 1, 1, 1)  # one cell, a quarter covered: no sample scored
    model = _FixedAnswers(background, [fine, coarse])
    batch = {
        "pixel_values": torch.zeros(2, 3, 8, 8),
        "input_ids": torch.zeros(2, 3, dtype=torch.long),
        "attention_mask": torch.ones(2, 3, dtype=torch.long),
        "mask": truth,
    }
    found = diagnose(model, [batch], keep_examples=0)
    assert found["background_complement_iou"] == pytest.approx(8 / (16 + 4))
    assert found["background_iou"] == pytest.approx(44 / (48 + 8))  # with 1 - truth
    assert found["target_iou"] == pytest.approx(1.0)
    assert found["map_samples"] == [2, 0]
    assert found["map_iou"][0] == pytest.approx(1.0) and found["map_iou"][1] is None
