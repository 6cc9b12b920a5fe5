"""The demo pipeline end to end on a tiny configuration (not its accuracy targets)."""

import json

import numpy as np
import pytest
import torch
import yaml

from btdnet.data import build_referring_dataset
from btdnet.demo import run_demo
from btdnet.evaluation import SwappedExpressionDataset
from btdnet.models import BTDNet, load_model


@torch.no_grad()
def _hand_scores(model: BTDNet, dataset) -> tuple[float, float]:
    """oIoU (cumulative I / cumulative U) and mIoU (mean IoU, empty union = 0), in percent."""
    inter, union = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        out = model(
            item["pixel_values"][None], item["input_ids"][None], item["attention_mask"][None]
        )
        pred = out.target_logits[0, 0].numpy() > 0
        gt = item["mask"].numpy().astype(bool)
        inter.append(int((pred & gt).sum()))
        union.append(int((pred | gt).sum()))
    ious = [i / u if u else 0.0 for i, u in zip(inter, union)]
    return 100.0 * sum(inter) / max(sum(union), 1), 100.0 * float(np.mean(ious))


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
    assert saved["wall_seconds"] > 0 and saved["protocol"] == "lavt"
    # the reported scores are those of the best checkpoint on the test split, recomputed here
    # with NumPy from the model's own masks (LAVT protocol: prediction and mask at 96x96)
    model = load_model(out / "train" / "checkpoints" / "best").eval()
    test = build_referring_dataset(
        "rrsisd", out / "data", "test", model.tokenizer, image_size=96,
        max_tokens=model.config.max_tokens,
    )  # fmt: skip
    swapped = SwappedExpressionDataset(test, seed=0)
    assert saved["samples"] == len(test) and saved["swapped_samples"] == len(swapped) >= 1
    for dataset, o_key, m_key in ((test, "oIoU", "mIoU"), (swapped, "oIoU_swapped", None)):
        o_iou, m_iou = _hand_scores(model, dataset)
        assert saved[o_key] == pytest.approx(o_iou, abs=1e-4)
        if m_key:
            assert saved[m_key] == pytest.approx(m_iou, abs=1e-4)
    assert (out / "train" / "checkpoints" / "best" / "model.safetensors").is_file()
    assert (out / "data" / "rrsisd" / "instances.json").is_file()
    assert "oIoU" in (out / "benchmark.md").read_text()
    pictures = list((out / "overlays").glob("*.png"))
    assert 1 <= len(pictures) <= 6
