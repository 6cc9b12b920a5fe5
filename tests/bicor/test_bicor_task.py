"""The closed-set training task end to end on a tiny synthetic set: train, score, save, resume."""

import json

import pytest
import torch
from torch.utils.data import DataLoader

from bicor.data.synthetic_seg import SyntheticSegDataset, write_synthetic_seg
from bicor.evaluation import evaluate_closed_set, predict_logits
from bicor.models import build_bicor, load_bicor
from bicor.task import SegTask, dataset_classes
from btdnet.engine import Trainer
from btdnet.metrics.confusion import ConfusionMatrix
from tests.closed_set_reference import reference_scores


def _config(tmp_path, **train):
    return {
        "output_dir": str(tmp_path / "run"),
        "seed": 0,
        "model": {"variant": "tiny", "pretrained": False, "overrides": {"num_layers": 1}},
        "data": {
            "dataset": "synthetic_seg",
            "root": str(tmp_path / "data"),
            "eval_splits": ["val"],
            "image_size": 64,
            "scales": [1.0],
            "generate_synthetic": {"train": 4, "val": 2, "size": 64, "seed": 0},
        },
        "eval": {"protocol": "geoseg"},
        "train": {
            "epochs": 1,
            "batch_size": 2,
            "eval_batch_size": 2,
            "lr": 1e-3,
            "schedule": "cosine",
            "trackers": "none",
            **train,
        },
    }


def test_dataset_classes():
    names, evaluated = dataset_classes("vaihingen")
    assert names[-1] == "clutter" and evaluated == (0, 1, 2, 3, 4)
    assert dataset_classes("synthetic_seg")[1] is None
    with pytest.raises(ValueError, match=r"data\.dataset: unknown value .cityscapes."):
        dataset_classes("cityscapes")


def test_train_evaluate_save_and_resume(tmp_path):
    config = _config(tmp_path)
    SegTask.from_config(config).prepare_data()
    assert (tmp_path / "data" / "classes.json").is_file()
    summary = Trainer(
        SegTask.from_config(config), config, tmp_path / "run", show_progress=False
    ).fit()
    assert summary.global_step == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(records) == 1 and records[0]["split"] == "val"
    record = records[0]
    names = ["background", "building", "road", "water", "forest", "agriculture"]
    assert list(record["per_class"]) == names and record["eval_classes"] == names
    model = load_bicor(tmp_path / "run" / "checkpoints" / "best")
    assert model.config.num_classes == 6 and model.config.image_size == 64
    # the logged numbers are those of the saved weights, recomputed here without btdnet.metrics
    val = SyntheticSegDataset(tmp_path / "data", "val", image_size=64)
    expected = reference_scores(model, val, eval_classes=range(6))
    assert record["images"] == expected["images"] == 2
    assert record["pixels"] == expected["pixels"] == 2 * 64 * 64
    assert record["mIoU"] == pytest.approx(expected["mIoU"])
    assert record["OA"] == pytest.approx(expected["OA"])
    for name, iou in zip(names, expected["IoU"]):
        assert record["per_class"][name]["IoU"] == pytest.approx(iou)
    defined_f1 = [v["F1"] for v in record["per_class"].values() if v["F1"] is not None]
    assert record["mF1"] == pytest.approx(sum(defined_f1) / len(defined_f1))

    # resuming a finished run trains no further and keeps the step count
    config["train"]["epochs"] = 2
    resumed = Trainer(
        SegTask.from_config(config),
        config,
        tmp_path / "run",
        resume=tmp_path / "run",
        show_progress=False,
    ).fit()
    assert resumed.global_step == 4


def test_evaluate_matches_a_hand_accumulated_confusion_matrix(tmp_path):
    root = write_synthetic_seg(tmp_path / "d", train=1, val=3, size=64)
    torch.manual_seed(0)
    model = build_bicor("tiny", num_classes=6, image_size=64).eval()
    loader = DataLoader(SyntheticSegDataset(root, "val"), batch_size=2)
    result = evaluate_closed_set(model, loader, window=64, stride=64)
    reference = ConfusionMatrix(6)
    with torch.no_grad():
        for batch in loader:
            reference.update(model(batch["pixel_values"]).logits.argmax(1), batch["mask"])
    expected = reference.compute(model.class_names)
    assert result["images"] == 3
    assert result["mIoU"] == pytest.approx(expected["mIoU"])
    assert result["OA"] == pytest.approx(expected["OA"])
    assert model.training is False


def test_predict_logits_with_windows_smaller_than_the_image():
    torch.manual_seed(0)
    model = build_bicor("tiny", num_classes=3, image_size=64).eval()
    image = torch.randn(1, 3, 100, 90)
    logits = predict_logits(model, image, window=64, stride=40)
    assert logits.shape == (1, 3, 100, 90)
    # by hand: windows start at rows 0, 36 (the last one moved back to end at 100) and columns
    # 0, 26; each pixel gets the mean of the windows' logits that cover it
    total, count = torch.zeros(1, 3, 100, 90), torch.zeros(1, 1, 100, 90)
    with torch.no_grad():
        for y in (0, 36):
            for x in (0, 26):
                total[..., y : y + 64, x : x + 64] += model(
                    image[..., y : y + 64, x : x + 64]
                ).logits
                count[..., y : y + 64, x : x + 64] += 1
    torch.testing.assert_close(logits, total / count, atol=1e-5, rtol=1e-5)


class _WindowRecorder(torch.nn.Module):
    """Records how many windows each call gets; per-pixel logits = the first two channels."""

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.config = type("Config", (), {"image_size": image_size, "num_classes": 2})()
        self.calls: list[int] = []
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        self.calls.append(int(x.shape[0]))
        return type("Out", (), {"logits": x[:, :2] + self.anchor})()


def test_predict_logits_default_stride_is_two_thirds_of_the_window():
    model = _WindowRecorder(image_size=6)
    image = torch.randn(1, 3, 12, 12)
    logits = predict_logits(model, image, window_batch=1)
    # window 6, stride 4: starts 0, 4 and the clamped 6 on each axis -> 3 x 3 windows
    assert sum(model.calls) == 9
    torch.testing.assert_close(logits, image[:, :2])  # pointwise model: averaging is exact
    one = _WindowRecorder(image_size=1)  # a 1-pixel window still advances (stride 1)
    torch.testing.assert_close(predict_logits(one, image[..., :3, :2]), image[:, :2, :3, :2])
    assert sum(one.calls) == 6


def test_evaluate_is_quiet_unless_asked(tmp_path, capsys):
    root = write_synthetic_seg(tmp_path / "d", train=1, val=2, size=32)
    model = build_bicor("tiny", num_classes=6, image_size=32).eval()
    loader = DataLoader(SyntheticSegDataset(root, "val"), batch_size=2)
    evaluate_closed_set(model, loader)
    assert capsys.readouterr().err == ""  # a library call draws no progress bar by default
    evaluate_closed_set(model, loader, show_progress=True)
    assert "evaluate" in capsys.readouterr().err


def test_param_groups_split_decay():
    task = SegTask.from_config(
        {"model": {"variant": "tiny", "encoder_lr_factor": 0.1, "decay_all_parameters": False}}
    )
    model = build_bicor("tiny", num_classes=3)
    groups = task.param_groups(model, lr=1e-3, weight_decay=0.05)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    lrs = {(g["lr"], g["weight_decay"]) for g in groups}
    assert lrs == {(1e-4, 0.0), (1e-4, 0.05), (1e-3, 0.0), (1e-3, 0.05)}
    authors = SegTask.from_config({"model": {"variant": "tiny", "encoder_lr_factor": 0.1}})
    # the authors' default: weight decay everywhere
    lrs = {(g["lr"], g["weight_decay"]) for g in authors.param_groups(model, 1e-3, 0.05)}
    assert lrs == {(1e-4, 0.05), (1e-3, 0.05)}
    embedding = model.class_embeddings.weight
    assert any(embedding is p and g["weight_decay"] == 0.0 for g in groups for p in g["params"])
