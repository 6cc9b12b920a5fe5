"""Closed-set metrics from one confusion matrix, against hand-computed values."""

import numpy as np
import pytest
import torch

from bicor.protocols import closed_set_protocol
from btdnet.metrics.confusion import ConfusionMatrix


def _three_class_batch():
    # rows gt, cols pred; built pixel by pixel below
    #        p0 p1 p2
    # g0  [  3, 1, 0 ]
    # g1  [  0, 2, 2 ]
    # g2  [  1, 0, 1 ]
    gt = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    pred = [0, 0, 0, 1, 1, 1, 2, 2, 0, 2]
    # two ignored pixels with arbitrary predictions
    gt += [255, 255]
    pred += [2, 1]
    return torch.tensor(pred).reshape(3, 4), torch.tensor(gt).reshape(3, 4)


def test_matrix_and_metrics_hand_computed():
    pred, gt = _three_class_batch()
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.update(pred, gt)
    assert cm.matrix.tolist() == [[3, 1, 0], [0, 2, 2], [1, 0, 1]]
    result = cm.compute(["a", "b", "c"])
    # IoU: a 3/(3+1+1)=0.6, b 2/(2+1+2)=0.4, c 1/(1+2+1)=0.25
    assert result["per_class"]["a"]["IoU"] == pytest.approx(60.0)
    assert result["per_class"]["b"]["IoU"] == pytest.approx(40.0)
    assert result["per_class"]["c"]["IoU"] == pytest.approx(25.0)
    # F1 = 2tp / (2tp + fp + fn): a 6/8, b 4/7, c 2/5
    assert result["per_class"]["a"]["F1"] == pytest.approx(75.0)
    assert result["per_class"]["b"]["F1"] == pytest.approx(400 / 7)
    assert result["per_class"]["c"]["F1"] == pytest.approx(40.0)
    assert result["per_class"]["a"]["precision"] == pytest.approx(75.0)  # 3 / 4
    assert result["per_class"]["b"]["recall"] == pytest.approx(50.0)  # 2 / 4
    assert result["mIoU"] == pytest.approx((60 + 40 + 25) / 3)
    assert result["mF1"] == pytest.approx((75 + 400 / 7 + 40) / 3)
    assert result["OA"] == pytest.approx(60.0)  # 6 of 10 labelled pixels
    assert result["pixels"] == 10


def test_eval_classes_restrict_means_but_not_oa():
    pred, gt = _three_class_batch()
    cm = ConfusionMatrix(3)
    cm.update(pred.numpy(), gt.numpy())
    result = cm.compute(["a", "b", "c"], eval_classes=["a", "b"])
    assert result["mIoU"] == pytest.approx(50.0)
    assert result["OA"] == pytest.approx(60.0)
    assert result["eval_classes"] == ["a", "b"]
    assert cm.compute(eval_classes=[2])["mIoU"] == pytest.approx(25.0)


def test_undefined_class_is_none_and_left_out_of_the_mean():
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    result = cm.compute()
    assert result["per_class"]["class_2"]["IoU"] is None
    assert result["mIoU"] == pytest.approx((50.0 + 50.0) / 2)


def test_class_without_true_positive_has_no_f1_as_geoseg_and_mmseg():
    # rows gt, cols pred: class 2 is in the ground truth (2 px) and predicted (1 px) but never
    # right -> tp 0: F1 is undefined (GeoSeg: 2PR/(P+R) = 0/0 = NaN; mmseg f_score likewise)
    # and left out of mF1; its IoU is 0 and counts. Matrix [[4, 0, 1], [0, 3, 0], [2, 0, 0]].
    gt = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 0, 2, 1, 1, 1, 0, 0])
    cm = ConfusionMatrix(3)
    cm.update(pred, gt)
    assert cm.matrix.tolist() == [[4, 0, 1], [0, 3, 0], [2, 0, 0]]
    result = cm.compute()
    assert result["per_class"]["class_2"]["F1"] is None
    assert result["per_class"]["class_2"]["IoU"] == 0.0
    assert result["per_class"]["class_2"]["precision"] == 0.0
    # F1: class 0 = 2*4 / (8 + 2 + 1) = 8/11; class 1 = 1
    assert result["per_class"]["class_0"]["F1"] == pytest.approx(800 / 11)
    assert result["mF1"] == pytest.approx((800 / 11 + 100.0) / 2)
    assert result["mIoU"] == pytest.approx((4 / 7 * 100 + 100.0 + 0.0) / 3)


def test_accumulates_and_resets_and_adds_matrices():
    pred, gt = _three_class_batch()
    cm = ConfusionMatrix(3)
    cm.update(pred, gt)
    cm.update(pred, gt)
    assert int(cm.matrix.sum()) == 20
    other = ConfusionMatrix(3)
    other.add_matrix(cm.matrix)
    assert torch.equal(other.matrix, cm.matrix)
    cm.reset()
    assert int(cm.matrix.sum()) == 0
    assert cm.compute()["mIoU"] == 0.0


def test_rejects_bad_ids_and_shapes():
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError, match="ground truth"):
        cm.update(torch.tensor([0]), torch.tensor([5]))
    with pytest.raises(ValueError, match="prediction holds"):
        cm.update(torch.tensor([3]), torch.tensor([1]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.zeros(2), torch.zeros(3))


def test_protocols():
    geo = closed_set_protocol("vaihingen")
    assert len(geo.class_names) == 6 and geo.eval_classes == (0, 1, 2, 3, 4)
    assert geo.class_names[5] == "clutter"
    assert closed_set_protocol("Potsdam", "mmseg").eval_classes == (0, 1, 2, 3, 4, 5)
    loveda = closed_set_protocol("loveda")
    assert loveda.eval_classes == tuple(range(7)) and loveda.class_names[0] == "background"
    with pytest.raises(ValueError, match="no closed-set protocol"):
        closed_set_protocol("cityscapes")
    with pytest.raises(ValueError, match="unknown closed-set protocol"):
        closed_set_protocol("loveda", "other")


def test_geoseg_protocol_excludes_clutter_from_means():
    protocol = closed_set_protocol("vaihingen", "geoseg")
    cm = ConfusionMatrix(6)
    # every class right once, clutter (5) always wrong
    gt = torch.tensor([0, 1, 2, 3, 4, 5])
    pred = torch.tensor([0, 1, 2, 3, 4, 0])
    cm.update(pred, gt)
    geo = cm.compute(protocol.class_names, protocol.eval_classes)
    assert geo["per_class"]["clutter"]["IoU"] == 0.0
    assert geo["per_class"]["impervious_surface"]["IoU"] == pytest.approx(50.0)
    assert geo["mIoU"] == pytest.approx((50 + 400) / 5)
    mm = closed_set_protocol("vaihingen", "mmseg")
    assert cm.compute(mm.class_names, mm.eval_classes)["mIoU"] == pytest.approx(450 / 6)
    assert geo["OA"] == pytest.approx(500 / 6)


def test_class_count_must_be_positive_and_one_class_works():
    for bad in (0, -2):
        with pytest.raises(ValueError, match="num_classes must be >= 1"):
            ConfusionMatrix(bad)
    single = ConfusionMatrix(1)
    single.update(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    assert single.compute()["OA"] == pytest.approx(100.0)


def test_protocol_names_built_at_run_time_select_the_same_classes():
    # names from argv or a YAML file are new string objects, not the interned literals
    geoseg = "".join(["geo", "seg"])
    vaihingen = "".join(["vai", "hingen"])
    protocol = closed_set_protocol(vaihingen, geoseg)
    assert protocol == closed_set_protocol("vaihingen", "geoseg")
    assert protocol.eval_classes == (0, 1, 2, 3, 4)  # clutter (5) left out
    assert closed_set_protocol(vaihingen, "".join(["mm", "seg"])).eval_classes == (0, 1, 2, 3, 4, 5)


def test_a_protocol_cannot_be_changed_by_a_caller():
    protocol = closed_set_protocol("potsdam", "geoseg")
    with pytest.raises(AttributeError):
        protocol.eval_classes = (0, 1, 2, 3, 4, 5)  # frozen: a shared protocol stays what it says
    assert closed_set_protocol("potsdam", "geoseg").eval_classes == (0, 1, 2, 3, 4)


def test_ids_are_checked_at_k_and_below_zero_and_ignored_pixels_are_not_checked():
    cm = ConfusionMatrix(2, ignore_index=255)
    for pred, gt, message in (
        ([2], [1], "prediction holds ids outside"),  # K itself is one past the last class
        ([-1], [1], "prediction holds ids outside"),
        ([1], [2], "ground truth holds ids outside"),
        ([1], [-1], "ground truth holds ids outside"),
    ):
        with pytest.raises(ValueError, match=message):
            cm.update(torch.tensor(pred), torch.tensor(gt))
    assert int(cm.matrix.sum()) == 0  # a refused batch adds nothing
    # a prediction under an ignored pixel is neither counted nor checked
    cm.update(torch.tensor([1, 7, 0]), torch.tensor([1, 255, 1]))
    assert cm.matrix.tolist() == [[0, 0], [1, 1]]
    with pytest.raises(ValueError, match=r"matrix shape \(3, 3\) != \(2, 2\)"):
        cm.add_matrix(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="got 3 class names for 2 classes"):
        cm.compute(["a", "b", "c"])
    with pytest.raises(ValueError, match="outside"):
        cm.compute(["a", "b"], [2])
    with pytest.raises(ValueError, match="outside"):
        cm.compute(["a", "b"], [-1])
    assert cm.compute(["a", "b"], ["b"])["eval_classes"] == ["b"]
