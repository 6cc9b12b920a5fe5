"""Choosing the presence threshold on a validation split: hand-valued sweeps, and the sweep of
one pass agrees with evaluate_referring run again at each threshold."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from btdnet.evaluation import evaluate_referring
from btdnet.evaluation.presence_calibration import (
    DEFAULT_THRESHOLDS,
    PresenceRow,
    choose_threshold,
    collect_presence_rows,
    rows_at_threshold,
    store_presence_threshold,
    sweep_rows,
)
from tests.btdnet.evaluation.test_benchmark_generalized import BlockModel, val  # noqa: F401 (fixture)

# A: targeted, painted I 30 / U 50 (pred 40), p 0.9      B: targeted, I 10 / U 40 (pred 20,
# so |gt| = 30), p 0.3      C: no-target painted 12 px, p 0.4      D: no-target painted 8 px, p 0.7
ROWS = [
    PresenceRow(30, 50, 40, False, 0.9),
    PresenceRow(10, 40, 20, False, 0.3),
    PresenceRow(0, 12, 12, True, 0.4),
    PresenceRow(0, 8, 8, True, 0.7),
]


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        # every answer painted: IoUs 0.6, 0.25, 0, 0; cIoU 40 / 110
        (0.25, {"gIoU": 21.25, "cIoU": 100 * 40 / 110, "N_acc": 0, "T_acc": 100}),
        # B and C empty: IoUs 0.6, 0, 1, 0; U of B becomes |gt| = 30: cIoU 30 / 88
        (0.5, {"gIoU": 40.0, "cIoU": 100 * 30 / 88, "N_acc": 50, "T_acc": 50}),
        # only A painted: IoUs 0.6, 0, 1, 1; cIoU 30 / 80
        (0.8, {"gIoU": 65.0, "cIoU": 37.5, "N_acc": 100, "T_acc": 50}),
        # nothing painted: IoUs 0, 0, 1, 1; cIoU 0 / (|gt A| = 40 + 30)
        (0.95, {"gIoU": 50.0, "cIoU": 0.0, "N_acc": 100, "T_acc": 0}),
    ],
)
def test_rows_at_threshold_by_hand(threshold, expected):
    result = rows_at_threshold(ROWS, threshold).compute()
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key


def test_sweep_chooses_the_best_giou():
    table = sweep_rows(ROWS, [0.25, 0.5, 0.8, 0.95])
    assert [row["threshold"] for row in table] == [0.25, 0.5, 0.8, 0.95]
    assert [row["gIoU"] for row in table] == pytest.approx([21.25, 40.0, 65.0, 50.0])
    assert choose_threshold(table, "gIoU") == 0.8


def test_default_grid_finds_a_crossing_between_twentieths():
    # no-target p 0.30 and 0.62, targeted p 0.63 and 0.90: only a threshold in (0.62, 0.63]
    # answers all four right; a grid in steps of 0.05 has min(N_acc, T_acc) = 50 at best
    rows = [PresenceRow(0, 5, 5, True, 0.30), PresenceRow(0, 5, 5, True, 0.62)]
    rows += [PresenceRow(4, 6, 5, False, 0.63), PresenceRow(4, 6, 5, False, 0.90)]
    assert tuple(k / 100 for k in range(1, 100)) == DEFAULT_THRESHOLDS
    table = sweep_rows(rows)
    assert choose_threshold(table) == 0.63
    best = next(row for row in table if row["threshold"] == 0.63)
    assert best["N_acc"] == best["T_acc"] == 100
    coarse = sweep_rows(rows, [k / 20 for k in range(1, 20)])
    assert max(min(row["N_acc"], row["T_acc"]) for row in coarse) == 50


def test_ties_go_to_the_threshold_closest_to_one_half():
    table = [{"threshold": t, "gIoU": g} for t, g in [(0.2, 70), (0.4, 80), (0.6, 80), (0.7, 80)]]
    assert choose_threshold(table, "gIoU") == 0.4  # 0.4 and 0.6 equally close: the lower
    assert choose_threshold(table[2:], "gIoU") == 0.6
    assert choose_threshold(table) == 0.4  # no N_acc / T_acc: balanced decides by gIoU


def test_balanced_criterion_takes_the_largest_min_of_n_and_t_acc():
    rows = [  # gIoU alone prefers 0.8 (N_acc 100, T_acc 50); 0.5 keeps both at 75
        {"threshold": 0.3, "gIoU": 50.0, "N_acc": 50.0, "T_acc": 100.0},
        {"threshold": 0.5, "gIoU": 60.0, "N_acc": 75.0, "T_acc": 75.0},
        {"threshold": 0.6, "gIoU": 61.0, "N_acc": 80.0, "T_acc": 75.0},
        {"threshold": 0.8, "gIoU": 65.0, "N_acc": 100.0, "T_acc": 50.0},
    ]
    assert choose_threshold(rows, "gIoU") == 0.8
    assert choose_threshold(rows) == 0.6  # min 75 at 0.5 and 0.6: the better gIoU
    assert choose_threshold(rows[:2]) == 0.5
    assert choose_threshold(sweep_rows(ROWS, [0.25, 0.5, 0.8, 0.95])) == 0.8  # by hand above


def test_balanced_criterion_falls_back_to_giou_without_both_kinds():
    rows = [
        {"threshold": 0.4, "gIoU": 70.0, "N_acc": None, "T_acc": 100.0},
        {"threshold": 0.6, "gIoU": 75.0, "N_acc": None, "T_acc": 90.0},
    ]
    assert choose_threshold(rows) == 0.6


def test_unknown_criterion_is_refused():
    with pytest.raises(ValueError, match="criterion"):
        choose_threshold([{"threshold": 0.5, "gIoU": 1.0}], "oIoU")


def test_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="no samples"):
        sweep_rows([])
    with pytest.raises(ValueError, match="empty sweep"):
        choose_threshold([])


def _loader(dataset):
    items = [{**dataset[i], "input_ids": torch.zeros(3, dtype=torch.long)} for i in range(2)]
    for item in items:
        item["attention_mask"] = torch.ones(3, dtype=torch.long)
    return DataLoader(items, batch_size=1)


def test_one_pass_sweep_equals_evaluating_at_each_threshold(val):  # noqa: F811
    from accelerate import Accelerator

    _, dataset = val
    presence = [-1.0, 0.5]  # p = 0.27 (no-target sample), 0.62 (targeted sample)
    accelerator = Accelerator(cpu=True)
    rows = collect_presence_rows(BlockModel(presence), _loader(dataset), accelerator)
    assert [round(r.presence, 3) for r in rows] == [0.269, 0.622]
    for threshold in (0.1, 0.5, 0.7):
        direct = evaluate_referring(
            BlockModel(presence), _loader(dataset), accelerator, protocol="lavt",
            dataset=dataset, show_progress=False, presence_threshold=threshold,
        )  # fmt: skip
        swept = rows_at_threshold(rows, threshold).compute()
        for key in ("gIoU", "cIoU", "N_acc", "T_acc"):
            assert swept[key] == pytest.approx(direct[key]), (threshold, key)


def test_the_sweep_is_quiet_unless_asked(val, capsys):  # noqa: F811
    from accelerate import Accelerator

    from btdnet.evaluation.presence_calibration import presence_sweep

    _, dataset = val
    accelerator = Accelerator(cpu=True)
    result = presence_sweep(BlockModel([-1.0, 0.5]), _loader(dataset), accelerator)
    assert result["samples"] == 2 and capsys.readouterr().err == ""
    presence_sweep(BlockModel([-1.0, 0.5]), _loader(dataset), accelerator, show_progress=True)
    assert "presence sweep" in capsys.readouterr().err


def test_model_without_presence_head_is_refused(val):  # noqa: F811
    from accelerate import Accelerator

    _, dataset = val
    with pytest.raises(ValueError, match="presence head"):
        collect_presence_rows(BlockModel(None), _loader(dataset), Accelerator(cpu=True))


def test_store_presence_threshold_rewrites_only_the_threshold(tmp_path):
    from btdnet import build_model, load_model

    model = build_model("tiny", pretrained=False, use_presence=True)
    model.save_pretrained(tmp_path / "m")
    weights = (tmp_path / "m" / "model.safetensors").read_bytes()
    store_presence_threshold(tmp_path / "m", 0.35)
    assert load_model(tmp_path / "m").config.presence_threshold == 0.35
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == weights
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        store_presence_threshold(tmp_path / "m", 1.5)


def test_store_presence_threshold_names_a_missing_or_broken_config(tmp_path):
    with pytest.raises(ValueError, match=r"config\.json: cannot read the model config"):
        store_presence_threshold(tmp_path, 0.4)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the model config"):
        store_presence_threshold(tmp_path, 0.4)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a BTDNet config"):
        store_presence_threshold(tmp_path, 0.4)
    assert (tmp_path / "config.json").read_text() == "[1, 2]"  # nothing overwritten


def test_store_presence_threshold_refuses_a_config_without_the_threshold_key(tmp_path):
    # a model folder of another kind: "config" is a mapping, but has no presence threshold
    text = '{"config": {"num_classes": 5}, "model_type": "bicor_seg"}\n'
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=r"config\.json: not a BTDNet config with a presence"):
        store_presence_threshold(tmp_path, 0.4)
    assert (tmp_path / "config.json").read_text() == text  # nothing added to it
