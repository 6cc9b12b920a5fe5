"""Each real-data training config starts and runs a few steps (and an evaluation) on a fixture."""

import json
from pathlib import Path

import pytest

from bicor.task import SegTask
from btdnet.engine import Trainer, load_config
from tests.closed_set_fixtures import (
    write_loveda_fixture,
    write_potsdam_fixture,
    write_vaihingen_fixture,
)

ROOT = Path(__file__).resolve().parents[1]
WRITERS = {
    "loveda": write_loveda_fixture,
    "vaihingen": write_vaihingen_fixture,
    "potsdam": write_potsdam_fixture,
}
EVAL_SPLIT = {"loveda": "val", "vaihingen": "val", "potsdam": "val"}


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
            "train.epochs=1",
            "train.batch_size=2",
            "train.num_workers=0",
            "train.mixed_precision=no",
            "train.trackers=none",
        ],
    )
    summary = Trainer(SegTask(), config, tmp_path / "run", show_progress=False).fit()
    assert summary["global_step"] >= 1
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["split"] == EVAL_SPLIT[name]
    for key in ("mIoU", "mF1", "OA", "per_class"):
        assert key in record
    assert 0.0 <= record["OA"] <= 100.0
    assert (tmp_path / "run" / "checkpoints" / "best" / "model.safetensors").is_file()
