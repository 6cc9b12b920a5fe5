"""The demo pipeline end to end on a tiny configuration (not its accuracy targets)."""

import json

import yaml

from btdnet.demo import run_demo


def test_demo_pipeline_writes_metrics_overlays_and_checkpoint(tmp_path):
    config = {
        "seed": 0,
        "model": {"variant": "tiny", "pretrained": False, "overrides": {"use_dmols": False}},
        "data": {
            "dataset": "rrsisd",
            "image_size": 96,
            "eval_splits": ["val"],
            "generate_synthetic": {"train": 3, "val": 2, "test": 3, "size": 64, "seed": 2},
        },
        "train": {"epochs": 1, "batch_size": 4, "eval_batch_size": 4, "trackers": "none"},
    }
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "demo"
    metrics = run_demo(out, config_path=path, show_progress=False)

    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for key in ("oIoU", "mIoU", "oIoU_swapped", "wall_seconds", "samples", "swapped_samples"):
        assert key in saved
    assert 0.0 <= saved["oIoU"] <= 100.0 and 0.0 <= saved["oIoU_swapped"] <= 100.0
    assert saved["samples"] >= saved["swapped_samples"] >= 1
    assert (out / "train" / "checkpoints" / "best" / "model.safetensors").is_file()
    assert (out / "data" / "rrsisd" / "instances.json").is_file()
    assert "oIoU" in (out / "benchmark.md").read_text()
    pictures = list((out / "overlays").glob("*.png"))
    assert 1 <= len(pictures) <= 6
