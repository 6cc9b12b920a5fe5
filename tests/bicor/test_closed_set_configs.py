"""Each real-data training config starts and runs a few steps (and an evaluation) on a fixture."""

import json
from pathlib import Path

import pytest

from bicor.models import load_bicor
from bicor.task import SegTask
from btdnet.engine import Trainer, load_config
from tests.closed_set_fixtures import (
    write_loveda_fixture,
    write_potsdam_fixture,
    write_vaihingen_fixture,
)
from tests.closed_set_reference import reference_scores

ROOT = Path(__file__).resolve().parents[2]
WRITERS = {
    "loveda": write_loveda_fixture,
    "vaihingen": write_vaihingen_fixture,
    "potsdam": write_potsdam_fixture,
}
EVAL_SPLIT = {"loveda": "val", "vaihingen": "val", "potsdam": "val"}
SCORED_CLASSES = {"loveda": range(7), "vaihingen": range(5), "potsdam": range(5)}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_real_data_config_runs_on_its_fixture(tmp_path, name):
    WRITERS[name](tmp_path / "data")
    config = load_config(
        ROOT / "configs" / f"{name}.yaml",
        [
            f"data.root={tmp_path / 'data'}",
            "model.variant=tiny",
            "model.pretrained=false",
            "data.crop_size=32",
            f"data.eval_splits=[{EVAL_SPLIT[name]}]",
            "eval.window=32",
            "eval.stride=24",
            "eval.tta={}",  # the reference below scores plain windows (TTA: test_bicor_tta.py)
            "train.epochs=1",
            "train.batch_size=2",
            "train.num_workers=0",
            "train.mixed_precision=no",
            "train.trackers=none",
        ],
    )
    task = SegTask.from_config(config)
    summary = Trainer(task, config, tmp_path / "run", show_progress=False).fit()
    assert summary.global_step >= 1
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["split"] == EVAL_SPLIT[name]
    # the papers' (GeoSeg) protocol: Vaihingen/Potsdam means leave clutter (id 5) out, LoveDA
    # keeps its seven classes; OA counts every class
    evaluated = SCORED_CLASSES[name]
    names = list(record["per_class"])
    assert record["eval_classes"] == [names[i] for i in evaluated]
    model = load_bicor(tmp_path / "run" / "checkpoints" / "best")
    dataset = task.build_datasets(model)[1][EVAL_SPLIT[name]]
    # the configs score GeoSeg's way: windows on the tile padded black at the bottom/right
    assert task.config.eval.border == "pad"
    expected = reference_scores(model, dataset, evaluated, window=32, stride=24, border="pad")
    assert record["images"] == expected["images"] and record["pixels"] == expected["pixels"]
    assert record["mIoU"] == pytest.approx(expected["mIoU"])
    assert record["OA"] == pytest.approx(expected["OA"])
    for class_name, iou in zip(names, expected["IoU"]):
        assert record["per_class"][class_name]["IoU"] == pytest.approx(iou)
