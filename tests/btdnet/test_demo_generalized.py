"""The generalized demo pipeline end to end on a tiny configuration (not its accuracy targets)."""

import json
import os

import torch

from btdnet.demo_generalized import run_generalized_demo


def test_generalized_demo_writes_metrics_overlays_and_checkpoint(tmp_path, tiny_demo_config):
    path = tiny_demo_config("grefs", batch_size=8, use_presence=True)
    out = tmp_path / "demo"
    metrics = run_generalized_demo(out, config_path=path, show_progress=False)

    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for key in ("gIoU", "cIoU", "N_acc", "T_acc", "oIoU", "wall_seconds"):
        assert key in saved
    assert 0.0 <= saved["gIoU"] <= 100.0 and 0.0 <= saved["N_acc"] <= 100.0
    assert saved["samples_no_target"] >= 1 and saved["samples_targeted"] >= 1
    assert saved["samples"] == saved["samples_no_target"] + saved["samples_targeted"]
    # quality targets only (a time target depends on the machine); the machine is reported
    assert set(saved["targets_met"]) == {"gIoU>=55", "N_acc>=80", "T_acc>=80"}
    assert saved["machine"]["cpu_cores"] == os.cpu_count()
    assert saved["machine"]["torch_threads"] == torch.get_num_threads()
    assert (out / "train" / "checkpoints" / "best" / "model.safetensors").is_file()
    # the threshold chosen on val is the one saved with the best checkpoint
    config = json.loads((out / "train" / "checkpoints" / "best" / "config.json").read_text())
    assert config["config"]["presence_threshold"] == saved["presence_threshold"]
    assert 0.0 < saved["presence_threshold"] < 1.0
    assert saved["at_default_threshold"]["threshold"] == 0.5
    assert (out / "data" / "grefs(unc).json").is_file()
    logged = [
        json.loads(line) for line in (out / "train" / "metrics.jsonl").read_text().splitlines()
    ]
    evals = [row for row in logged if any("gIoU" in str(k) for k in row)]
    assert evals, "training-time evaluation logs the generalized metrics"
    pictures = list((out / "overlays").glob("*.png"))
    assert 1 <= len(pictures) <= 8
