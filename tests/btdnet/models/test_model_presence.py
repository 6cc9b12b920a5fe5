"""The presence head of generalized referring: switch, loss, gradients, old checkpoints."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from btdnet import BTDNetOutput, build_model, load_model
from btdnet.models.losses import BTDNetCriterion
from tests.btdnet.models.test_model_btdnet import make_batch


def test_head_off_by_default_and_outputs_unchanged() -> None:
    torch.manual_seed(0)
    plain = build_model("tiny", pretrained=False)
    assert plain.presence_head is None and not plain.config.use_presence
    torch.manual_seed(0)
    off = build_model("tiny", pretrained=False, use_presence=False, presence_weight=3.0)
    batch = make_batch(96)
    torch.manual_seed(1)
    a = plain(**batch)
    torch.manual_seed(1)
    b = off(**batch)
    assert a.presence_logits is None and "presence" not in a.losses
    torch.testing.assert_close(a.loss, b.loss)  # the weight does nothing with the head off
    assert torch.equal(a.present(), torch.ones(2, dtype=torch.bool))
    assert torch.equal(a.masks(), a.target_logits > 0)


@pytest.mark.parametrize("size", [96, 160])
def test_presence_logits_loss_and_gradients(size: int) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, image_size=size, use_presence=True).train()
    batch = make_batch(size, batch=3)
    out = model(**batch)
    assert out.presence_logits.shape == (3,)
    present = torch.tensor([1.0, 1.0, 0.0])  # make_batch: the last target is empty
    expected = F.binary_cross_entropy_with_logits(out.presence_logits.detach(), present)
    torch.testing.assert_close(out.losses["presence"].detach(), expected)
    out.loss.backward()
    head = {n: p for n, p in model.named_parameters() if n.startswith("presence_head.")}
    assert head and all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.values())


def test_presence_weight_scales_the_total() -> None:
    batch = make_batch(96)
    totals = {}
    for weight in (0.0, 2.0):
        torch.manual_seed(0)
        model = build_model("tiny", pretrained=False, use_presence=True, presence_weight=weight)
        torch.manual_seed(1)
        out = model(**batch)
        totals[weight] = (out.loss.detach(), out.losses["presence"].detach())
    torch.testing.assert_close(totals[2.0][0] - totals[0.0][0], 2.0 * totals[2.0][1])


def test_explicit_present_overrides_the_mask() -> None:
    criterion = BTDNetCriterion(
        class_weights=(1.0, 1.0),
        dice_weight=0.0,
        target_stream_weight=0.0,
        background_weight=0.0,
        agreement_weight=0.0,
        alignment_weight=0.0,
        extra_weights={},
        presence_weight=1.0,
    )
    logits = torch.zeros(2, 1, 5, 7)
    targets = torch.zeros(2, 5, 7)
    targets[0, 1, 1] = 1
    presence = torch.tensor([2.0, -1.0])
    by_mask = criterion(joint_logits=logits, targets=targets, presence_logits=presence)
    # -log(sigmoid(2)) = log(1 + e^-2) and -log(1 - sigmoid(-1)) = log(1 + e^-1), averaged.
    expected = torch.tensor((math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))) / 2)
    torch.testing.assert_close(by_mask["presence"], expected)
    flipped = criterion(
        joint_logits=logits,
        targets=targets,
        presence_logits=presence,
        present=torch.tensor([0.0, 1.0]),
    )
    expected_flipped = torch.tensor((math.log1p(math.exp(2.0)) + math.log1p(math.exp(1.0))) / 2)
    torch.testing.assert_close(flipped["presence"], expected_flipped)


def test_answer_masks_follow_the_threshold() -> None:
    logits = torch.full((2, 1, 3, 3), 1.0)
    out = BTDNetOutput(
        target_logits=logits, background_logits=-logits, presence_logits=torch.tensor([0.0, 3.0])
    )
    torch.testing.assert_close(out.presence(), torch.sigmoid(torch.tensor([0.0, 3.0])))
    assert out.present(0.5).tolist() == [True, True]  # sigmoid(0) == 0.5 is present
    assert out.present(0.6).tolist() == [False, True]
    masks = out.masks(0.6)
    assert not masks[0].any() and masks[1].all()


def test_presence_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, use_presence=True, presence_threshold=0.3)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt", training=False)
    assert loaded.config.use_presence and loaded.config.presence_threshold == 0.3
    batch = make_batch(96)
    with torch.no_grad():
        a = model.eval()(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
        b = loaded.eval()(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    assert torch.equal(a.presence_logits, b.presence_logits)


def test_checkpoint_written_before_the_head_existed_loads_unchanged(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False)
    folder = model.save_pretrained(tmp_path / "old")
    meta_path = folder / "config.json"
    meta = json.loads(meta_path.read_text())
    for key in ("use_presence", "presence_threshold", "presence_weight"):
        del meta["config"][key]  # exactly what an older checkpoint's config holds
    meta_path.write_text(json.dumps(meta))
    loaded = load_model(folder)
    assert loaded.presence_head is None and loaded.config == model.config
    batch = make_batch(96)
    with torch.no_grad():
        a = model.eval()(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
        b = loaded.eval()(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    assert torch.equal(a.target_logits, b.target_logits) and b.presence_logits is None


def test_bad_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="presence_threshold"):
        build_model("tiny", pretrained=False, presence_threshold=1.5)
    with pytest.raises(ValueError, match="presence_weight"):
        build_model("tiny", pretrained=False, presence_weight=-1.0)


def test_profile_presence_script_counts_the_head() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "scripts" / "profile_presence.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--variant", "tiny", "--flops-only", "--json"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout)
    head = build_model("tiny", pretrained=False, use_presence=True).presence_head
    assert report["params_head"] == sum(p.numel() for p in head.parameters())
    assert report["gflops_with"] > report["gflops_without"] > 0
    # the counter counts matrix products, 2 FLOPs per multiply-add: the head adds per sample
    # text_proj (D x C) and the MLP's (3C + 2) x H and H x 1 (the pooling is element-wise)
    text_dim, visual_dim = head.text_proj.in_features, head.text_proj.out_features
    hidden = head.mlp[0].out_features
    head_flops = 2 * (text_dim * visual_dim + (3 * visual_dim + 2) * hidden + hidden)
    added = (report["gflops_with"] - report["gflops_without"]) * 1e9
    assert added == pytest.approx(head_flops, abs=0.5)
