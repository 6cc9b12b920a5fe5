"""eval.selection: the authors' rule (mF1 on ISPRS, mIoU on LoveDA, scored without TTA) or the
toolkit's (mIoU with the configured TTA), written beside every score and read back by the
benchmark from the checkpoint's training state."""

import pytest
import torch
from torch.utils.data import DataLoader

from bicor.benchmark import checkpoint_selection
from bicor.data.synthetic_seg import SyntheticSegDataset, write_synthetic_seg
from bicor.evaluation import evaluate_closed_set
from bicor.models import build_bicor
from bicor.task import SegTask
from btdnet.engine import Trainer
from btdnet.engine.config import ConfigError


def _run_config(tmp_path) -> dict:
    """One epoch of the tiny model on a 4-image synthetic set, scored on its val split."""
    return {
        "output_dir": str(tmp_path / "run"),
        "seed": 0,
        "model": {"variant": "tiny", "pretrained": False, "overrides": {"num_layers": 1}},
        "data": {
            "dataset": "synthetic_seg", "root": str(tmp_path / "data"), "eval_splits": ["val"],
            "image_size": 64, "scales": [1.0],
            "generate_synthetic": {"train": 4, "val": 2, "size": 64, "seed": 0},
        },
        "eval": {"protocol": "geoseg", "selection": "authors"},
        "train": {"epochs": 1, "batch_size": 2, "eval_batch_size": 2, "lr": 1e-3,
                  "schedule": "cosine", "trackers": "none"},
    }  # fmt: skip


def _task(dataset: str, selection: str) -> SegTask:
    return SegTask.from_config(
        {"model": {"variant": "tiny"}, "data": {"dataset": dataset, "eval_splits": ["test"]},
         "eval": {"selection": selection, "tta": {"hflip": True, "vflip": True}}}
    )  # fmt: skip


def test_the_rule_and_its_metric_per_data_set():
    assert _task("vaihingen", "authors").best_metric == "mF1"
    assert _task("potsdam", "authors").best_metric == "mF1"
    assert _task("loveda", "authors").best_metric == "mIoU"
    assert _task("vaihingen", "toolkit").best_metric == "mIoU"
    rule = _task("potsdam", "authors").selection_rule
    assert rule == "best mF1 on test without TTA (the authors' rule)"
    toolkit = _task("potsdam", "toolkit").selection_rule
    assert toolkit.startswith("best mIoU on test with TTA {'hflip': True, 'vflip': True}")
    with pytest.raises((ConfigError, ValueError), match=r"eval\.selection"):
        _task("potsdam", "best_of_test")


def test_authors_rule_scores_without_tta(tmp_path):
    root = write_synthetic_seg(tmp_path / "d", train=1, val=2, size=64)
    torch.manual_seed(0)
    model = build_bicor("tiny", num_classes=6, image_size=64).eval()
    loader = DataLoader(SyntheticSegDataset(root, "val"), batch_size=1)
    config = {"model": {"variant": "tiny"}, "data": {"dataset": "synthetic_seg"}}
    tta = {"hflip": True, "vflip": True, "rot90": True}
    authors = SegTask.from_config({**config, "eval": {"selection": "authors", "tta": tta}})
    toolkit = SegTask.from_config({**config, "eval": {"tta": tta}})

    class Acc:
        device = torch.device("cpu")
        num_processes, process_index, is_main_process = 1, 0, True

        def unwrap_model(self, m):
            return m

        def gather_for_metrics(self, x):
            return x

    plain = evaluate_closed_set(model, loader, window=64, stride=64)
    got = authors.evaluate(model, loader, Acc())
    assert got["mIoU"] == pytest.approx(plain["mIoU"]) and "without TTA" in got["selection"]
    with_tta = toolkit.evaluate(model, loader, Acc())
    assert "with TTA" in with_tta["selection"]
    assert with_tta["mIoU"] != pytest.approx(plain["mIoU"])  # TTA changes this model's answer


def test_checkpoint_records_its_rule_for_the_benchmark(tmp_path):
    config = _run_config(tmp_path)
    task = SegTask.from_config(config)
    task.prepare_data()
    Trainer(task, config, tmp_path / "run", show_progress=False).fit()
    rule = checkpoint_selection(tmp_path / "run" / "checkpoints" / "best")
    assert rule == "best mIoU on val without TTA (the authors' rule); epoch 1"
    assert checkpoint_selection(tmp_path).startswith("unknown")
