"""The closed-set training recipe switches: Lookahead(AdamW) and the per-epoch cosine."""

import math

import pytest
import torch
from timm.optim import Lookahead

from bicor.task import SegTask
from btdnet.engine import checkpoints as ckpt
from btdnet.engine.optimizer import build_optimizer
from btdnet.engine.schedule import build_scheduler, epoch_cosine_factor
from btdnet.engine.trainer import TrainSettings


def test_epoch_cosine_is_cosine_annealing_stepped_per_epoch():
    # CosineAnnealingLR(T_max=3, eta_min=0.1 * base): epoch e -> 0.1 + 0.9 * (1 + cos(pi e/3)) / 2
    factors = [
        epoch_cosine_factor(step, warmup_steps=0, steps_per_epoch=4, epochs=3, min_factor=0.1)
        for step in range(12)
    ]
    expected = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s // 4) / 3)) for s in range(12)]
    assert factors == pytest.approx(expected)
    assert factors[:4] == [1.0] * 4 and factors[4] == factors[7]


def test_scheduler_and_lookahead_follow_the_recipe(tmp_path):
    param = torch.nn.Parameter(torch.ones(3))
    groups = [{"params": [param], "lr": 1.0, "weight_decay": 0.01}]
    optimizer = build_optimizer("lookahead_adamw", groups, lr=1.0, weight_decay=0.01)
    assert isinstance(optimizer, Lookahead)
    group = optimizer.param_groups[0]
    assert (group["lookahead_k"], group["lookahead_alpha"]) == (5, 0.5)
    scheduler = build_scheduler(
        optimizer, kind="cosine", total_steps=6, warmup_steps=0, min_lr=0.0, steps_per_epoch=2
    )
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        param.grad = torch.ones(3)
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([1.0, 1.0, 0.75, 0.75, 0.25, 0.25])
    state = optimizer.state_dict()
    assert "lookahead_slow_buff" in state["state"][0]  # slow weights exist from step 1 on
    ckpt.save_tensors(state, tmp_path / "optimizer.pt")
    other = torch.nn.Parameter(torch.ones(3))
    fresh = build_optimizer(
        "lookahead_adamw",
        [{"params": [other], "lr": 1.0, "weight_decay": 0.01}],
        lr=1.0,
        weight_decay=0.01,
    )
    fresh.load_state_dict(ckpt.load_tensors(tmp_path / "optimizer.pt"))
    torch.testing.assert_close(
        fresh.state_dict()["state"][0]["lookahead_slow_buff"],
        state["state"][0]["lookahead_slow_buff"],
    )


def _trajectory(optimizer_class, steps: int = 11) -> list[float]:
    """Values of one weight (start 0) under SGD lr 1 with gradient 1, wrapped in Lookahead."""
    param = torch.nn.Parameter(torch.zeros(()))
    optimizer = optimizer_class(torch.optim.SGD([param], lr=1.0), alpha=0.5, k=5)
    values = []
    for _ in range(steps):
        param.grad = torch.ones(())
        optimizer.step()
        values.append(float(param.detach()))
    return values


def test_lookahead_syncs_with_catalysts_phase():
    """catalyst's Lookahead (the authors' optimizer) syncs after steps 1, 6, 11, its slow weight
    taken after step 1 (-1): step 6 moves -6 to -1 + 0.5 * (-6 + 1) = -3.5, step 11 moves -8.5
    to -3.5 + 0.5 * (-8.5 + 3.5) = -6. timm's syncs after steps 5 and 10 instead."""
    from btdnet.engine.lookahead import CatalystLookahead

    catalyst = [-1, -2, -3, -4, -5, -3.5, -4.5, -5.5, -6.5, -7.5, -6]
    timm = [-1, -2, -3, -4, -5, -6, -7, -8, -9, -7.5, -8.5]
    assert _trajectory(CatalystLookahead) == pytest.approx(catalyst)
    assert _trajectory(Lookahead) == pytest.approx(timm)
    built = build_optimizer("lookahead_adamw", [torch.nn.Parameter(torch.ones(2))], lr=1.0,
                            weight_decay=0.0)  # fmt: skip
    assert isinstance(built, CatalystLookahead)


def test_settings_refuse_unknown_recipes():
    with pytest.raises(ValueError, match=r"train\.optimizer"):
        TrainSettings.from_config({"train": {"optimizer": "sgd"}})
    with pytest.raises(ValueError, match="schedule_unit"):
        TrainSettings.from_config({"train": {"schedule_unit": "hour"}})
    assert TrainSettings.from_config({"train": {"optimizer": "lookahead_adamw"}}).optimizer


def test_weight_decay_on_every_parameter_unless_asked_otherwise():
    from bicor import build_bicor

    model = build_bicor("tiny", num_classes=3)
    everything = SegTask.from_config({"model": {"variant": "tiny"}}).param_groups(model, 1e-3, 0.01)
    assert {g["weight_decay"] for g in everything} == {0.01}
    assert sum(len(g["params"]) for g in everything) == len(list(model.parameters()))
    task = SegTask.from_config({"model": {"variant": "tiny", "decay_all_parameters": False}})
    ours = task.param_groups(model, 1e-3, 0.01)
    exempt = {id(p) for g in ours if g["weight_decay"] == 0.0 for p in g["params"]}
    assert id(model.class_embeddings.weight) in exempt
    assert id(model.fusion.fuse.weight) not in exempt
