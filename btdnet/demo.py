"""The end-to-end demo: synthetic data -> training -> benchmark -> pictures, on a laptop CPU.

``make demo`` (``scripts/demo.py``) runs it. It shows the whole toolkit working and that the
model reads the expression: the test split is scored twice, once with the true expressions
and once with each expression swapped for another object's expression in the same image.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset

from btdnet.data import build_referring_dataset
from btdnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from btdnet.engine.accelerator import make_accelerator
from btdnet.engine.config import get, load_config
from btdnet.engine.trainer import Trainer
from btdnet.evaluation import SwappedExpressionDataset, evaluate_referring, format_markdown
from btdnet.models import BTDNet, load_model
from btdnet.predict.overlay import render_overlay
from btdnet.task import ReferringTask, prepare_data

TARGET_OIOU = 50.0
TARGET_SWAP_DROP = 15.0
TARGET_MINUTES = 15.0


def _score(model: BTDNet, dataset: Any, accelerator: Any, batch_size: int) -> dict:
    loader = accelerator.prepare(DataLoader(dataset, batch_size=batch_size, shuffle=False))
    return evaluate_referring(model, loader, accelerator, show_progress=False)


def _denormalise(pixel_values: torch.Tensor) -> np.ndarray:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    rgb = (pixel_values.cpu() * std + mean).clamp(0, 1)  # (3, S, S)
    return (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (S, S, 3)


@torch.no_grad()
def write_overlays(model: BTDNet, dataset: Any, out_dir: Path, count: int = 6) -> list[Path]:
    """Side-by-side pictures: prediction (green) and ground truth (orange) with the text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    step = max(1, len(dataset) // count)
    written = []
    for index in range(0, min(len(dataset), step * count), step):
        item = dataset[index]
        out = model(
            item["pixel_values"][None], item["input_ids"][None], item["attention_mask"][None]
        )
        pred = (out.target_logits[0, 0] > 0).cpu().numpy()
        gt = item["mask"].numpy().astype(bool)
        rgb = _denormalise(item["pixel_values"])
        left = render_overlay(rgb, pred, f"predicted: {item['text']}", color=(40, 220, 90))
        right = render_overlay(rgb, gt, "ground truth", color=(255, 150, 30))
        panel = Image.new("RGB", (left.width * 2 + 4, left.height), (255, 255, 255))
        panel.paste(left, (0, 0))
        panel.paste(right, (left.width + 4, 0))
        path = out_dir / f"{item['sample_id']}.png"
        panel.save(path)
        written.append(path)
    return written


def score_checkpoint(
    checkpoint: str | Path, data_root: str | Path, *, batch_size: int = 16
) -> dict:
    """Score a checkpoint on the synthetic test split with true and with swapped expressions.

    Returns ``true`` (all test samples), ``swapped`` (each expression replaced by another
    object's expression from the same image), ``swap_subset`` (the samples that have such a
    partner, with their true expressions), plus the loaded ``model`` and the ``dataset``.
    """
    model = load_model(checkpoint)
    model.eval()
    accelerator = make_accelerator()
    test = build_referring_dataset(
        "rrsisd",
        data_root,
        "test",
        model.tokenizer,
        image_size=model.config.image_size,
        max_tokens=model.config.max_tokens,
    )
    swapped_set = SwappedExpressionDataset(test, seed=0)
    return {
        "true": _score(model, test, accelerator, batch_size),
        "swapped": _score(model, swapped_set, accelerator, batch_size),
        "swap_subset": _score(model, Subset(test, swapped_set.indices), accelerator, batch_size),
        "model": model,
        "dataset": test,
    }


def run_demo(
    out_dir: str | Path,
    *,
    config_path: str | Path = "configs/synthetic.yaml",
    overrides: list[str] | tuple[str, ...] = (),
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run the whole demo into ``out_dir``; return (and write) ``metrics.json``'s content."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    config = load_config(config_path, overrides)
    config["output_dir"] = str(out_dir / "train")
    config.setdefault("data", {})["root"] = str(out_dir / "data")

    print(f"[1/4] synthetic referring benchmark -> {out_dir / 'data'}")
    t0 = time.perf_counter()
    prepare_data(config)
    data_seconds = time.perf_counter() - t0

    print(f"[2/4] training ({get(config, 'model.variant')} variant) -> {out_dir / 'train'}")
    t0 = time.perf_counter()
    summary = Trainer(ReferringTask(), config, out_dir / "train", show_progress=show_progress).fit()
    train_seconds = time.perf_counter() - t0

    print("[3/4] benchmark on the synthetic test split (true and swapped expressions)")
    t0 = time.perf_counter()
    batch = int(get(config, "train.eval_batch_size", 16))
    scores = score_checkpoint(
        out_dir / "train" / "checkpoints" / "best", config["data"]["root"], batch_size=batch
    )
    results, swapped, same_subset = scores["true"], scores["swapped"], scores["swap_subset"]
    bench_seconds = time.perf_counter() - t0
    (out_dir / "benchmark.md").write_text(format_markdown(results), encoding="utf-8")

    print(f"[4/4] overlay pictures -> {out_dir / 'overlays'}")
    pictures = write_overlays(scores["model"], scores["dataset"], out_dir / "overlays")

    wall = time.perf_counter() - start
    metrics = {
        "oIoU": results["oIoU"],
        "mIoU": results["mIoU"],
        **{k: results[k] for k in ("Pr@0.5", "Pr@0.6", "Pr@0.7", "Pr@0.8", "Pr@0.9")},
        "samples": results["samples"],
        "oIoU_swapped": swapped["oIoU"],
        "mIoU_swapped": swapped["mIoU"],
        "oIoU_swap_subset": same_subset["oIoU"],
        "swapped_samples": swapped["samples"],
        "split": "test",
        "protocol": results.get("protocol", "lavt"),
        "best_val_oIoU": summary["best_value"],
        "train_steps": summary["global_step"],
        "data_seconds": round(data_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "benchmark_seconds": round(bench_seconds, 1),
        "wall_seconds": round(wall, 1),
        "torch_threads": torch.get_num_threads(),
    }
    drop = metrics["oIoU"] - metrics["oIoU_swapped"]
    metrics["targets_met"] = {
        "oIoU>=50": metrics["oIoU"] >= TARGET_OIOU,
        "swap_drop>=15": drop >= TARGET_SWAP_DROP,
        "minutes<=15": wall <= TARGET_MINUTES * 60,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")

    print()
    print(format_markdown(results))
    print(
        f"test oIoU {metrics['oIoU']:.2f} (target >= {TARGET_OIOU:.0f}), "
        f"mIoU {metrics['mIoU']:.2f}, samples {metrics['samples']}\n"
        f"swapped expressions: oIoU {metrics['oIoU_swapped']:.2f} on {swapped['samples']} "
        f"samples (same samples with true expressions: {metrics['oIoU_swap_subset']:.2f}); "
        f"drop {drop:.2f} points (target >= {TARGET_SWAP_DROP:.0f})\n"
        f"wall time {wall / 60:.1f} min (target <= {TARGET_MINUTES:.0f}): "
        f"data {data_seconds:.0f} s, training {train_seconds:.0f} s, "
        f"benchmark {bench_seconds:.0f} s"
    )
    print(
        f"outputs in {out_dir}:\n"
        f"  metrics.json     {out_dir / 'metrics.json'}\n"
        f"  benchmark table  {out_dir / 'benchmark.md'}\n"
        f"  overlays         {len(pictures)} pictures in {out_dir / 'overlays'}\n"
        f"  checkpoint       {out_dir / 'train' / 'checkpoints' / 'best'}\n"
        f"  training log     {out_dir / 'train' / 'metrics.jsonl'}"
    )
    return metrics
