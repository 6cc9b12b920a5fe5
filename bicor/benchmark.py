"""``scripts/benchmark.py --task seg``: score a BiCoR-Seg checkpoint, or another model's
prediction files, on a closed-set split.

The checkpoint runs by sliding windows over every image of the split; one confusion matrix
gives mIoU, mF1 and OA (percentages) under the chosen protocol (evaluation.md): ``geoseg``
(default: Vaihingen/Potsdam means without clutter) or ``mmseg`` (clutter included).
``--predictions DIR`` scores files instead (``bicor.prediction_files``: one class-id PNG/TIFF per
image, named after the image's stem) into the same confusion matrix and the same JSON keys;
``--save-predictions DIR`` with a checkpoint writes exactly such files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from bicor.data.builder import build_closed_set_dataset
from bicor.data.synthetic_seg import SyntheticSegDataset
from bicor.evaluation import evaluate_closed_set
from bicor.models import load_bicor
from bicor.prediction_files import (
    dataset_palette,
    sample_stems,
    score_seg_prediction_files,
    write_class_prediction,
)
from bicor.registry import SEG_DATASETS
from bicor.task import SYNTHETIC, dataset_classes
from bicor.tta import parse_tta_spec
from btdnet.engine.checkpoints import PROGRESS_FILE, STATE_DIR
from btdnet.evaluation.prediction_folder import claim_prediction_folder
from btdnet.safe_write import check_output_folder

SEG_PROTOCOLS = ("geoseg", "mmseg")


def _dataset(args: argparse.Namespace) -> tuple[Dataset, int]:
    """The split's dataset and the batch size to read it with (1 for whole tiles)."""
    if args.dataset == SYNTHETIC:
        return SyntheticSegDataset(args.root, args.split), args.batch_size
    return build_closed_set_dataset(args.dataset, args.root, args.split, mode="eval"), 1


def _check_args(args: argparse.Namespace) -> str:
    """Validate dataset / protocol for ``--task seg``; return the protocol."""
    if args.dataset not in SEG_DATASETS:
        raise ValueError(f"--task seg needs --dataset in {SEG_DATASETS}, got {args.dataset!r}")
    protocol = args.protocol or "geoseg"
    if protocol not in SEG_PROTOCOLS:
        raise ValueError(f"--task seg needs --protocol in {SEG_PROTOCOLS}, got {protocol!r}")
    if getattr(args, "save_predictions", None) is not None:  # no PNGs written through a link
        check_output_folder(args.save_predictions)
    return protocol


def _prediction_writer(dataset: Dataset, folder: Path, dataset_name: str):
    """``on_prediction`` callback writing ``<image stem>.png`` class-id files into ``folder``."""
    stems = sample_stems(dataset)
    palette = dataset_palette(dataset_name)

    def write(sample_id: str, pred: Tensor) -> None:
        ids = pred.cpu().numpy()  # (H, W)
        write_class_prediction(ids, folder / f"{stems[sample_id]}.png", palette)

    return write


def run_seg(args: argparse.Namespace, accelerator: Any) -> dict[str, Any] | None:
    """Score ``args.checkpoint`` (results on every process) or ``args.predictions`` (results on
    the main process, None elsewhere) on ``args.dataset`` / ``args.split``.

    Reads ``args``: checkpoint, predictions, save_predictions, dataset, root, split, protocol,
    window, stride, border, tta, tta_scales, window_batch, batch_size, num_workers.
    """
    protocol = _check_args(args)
    tta_spec, tta_scales = getattr(args, "tta", None), getattr(args, "tta_scales", None)
    if args.predictions is not None:
        if tta_spec or tta_scales:
            raise ValueError("--tta / --tta-scales need --checkpoint (files are already predicted)")
        return _score_files(args, accelerator, protocol)
    tta = parse_tta_spec(tta_spec, tta_scales, args.dataset)
    model = load_bicor(args.checkpoint).to(accelerator.device)
    class_names, eval_classes = dataset_classes(args.dataset, protocol)
    if model.num_classes != len(class_names):
        raise ValueError(
            f"{args.checkpoint}: predicts {model.num_classes} classes, {args.dataset} has "
            f"{len(class_names)}"
        )
    dataset, batch_size = _dataset(args)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=args.num_workers)
    # not prepared: tiles stay on the CPU; only window batches go to the device
    loader = accelerator.prepare_data_loader(loader, device_placement=False)
    window = model.config.image_size if args.window is None else args.window  # 0 is refused
    stride = max(1, (2 * window) // 3) if args.stride is None else args.stride
    save_dir = getattr(args, "save_predictions", None)
    if save_dir is not None:  # never replaces a file the benchmark did not write
        if accelerator.is_main_process:
            names = [f"{stem}.png" for stem in sample_stems(dataset).values()]
            claim_prediction_folder(save_dir, names)
        accelerator.wait_for_everyone()
    results = evaluate_closed_set(
        model,
        loader,
        accelerator,
        class_names=class_names,
        eval_classes=eval_classes,
        window=window,
        stride=stride,
        tta=tta,
        window_batch=args.window_batch,
        border=getattr(args, "border", "clamp"),
        show_progress=True,
        on_prediction=None
        if save_dir is None
        else _prediction_writer(dataset, save_dir, args.dataset),
    )
    return {
        **results,
        "dataset": args.dataset,
        "split": args.split,
        "protocol": protocol,
        "window": window,
        "stride": stride,
        "border": getattr(args, "border", "clamp"),
        "tta": tta.describe(),
        "checkpoint": str(args.checkpoint),
        "selection": checkpoint_selection(Path(args.checkpoint)),
    }


def checkpoint_selection(checkpoint: Path) -> str:
    """How a trainer checkpoint was chosen (its ``training_state/progress.json``), for the report: a
    score of a checkpoint chosen on the split it is scored on is optimistic."""
    progress = checkpoint / STATE_DIR / PROGRESS_FILE
    try:
        state = json.loads(progress.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown (no training state beside the weights)"
    rule = state.get("selection") or f"best {state.get('best_metric', '?')} (rule not recorded)"
    return f"{rule}; epoch {state.get('epoch', '?')}" if isinstance(rule, str) else "unknown"


def _score_files(args: argparse.Namespace, accelerator: Any, protocol: str) -> dict | None:
    """Score ``args.predictions`` on the main process (no model involved)."""
    if getattr(args, "save_predictions", None) is not None:
        raise ValueError("--save-predictions needs --checkpoint (--predictions already are files)")
    results = None
    if accelerator.is_main_process:
        class_names, eval_classes = dataset_classes(args.dataset, protocol)
        dataset, _ = _dataset(args)
        results = score_seg_prediction_files(
            dataset,
            args.predictions,
            class_names=class_names,
            eval_classes=eval_classes,
            palette=dataset_palette(args.dataset),
            show_progress=True,
        )
        results = {
            **results,
            "dataset": args.dataset,
            "split": args.split,
            "protocol": protocol,
            "predictions": str(args.predictions),
        }
    accelerator.wait_for_everyone()
    return results


def _cell(value: Any) -> str:
    """Two decimals; "–" for an undefined value (JSON null; NaN in the peers' tables)."""
    return "–" if value is None else f"{value:.2f}"


def format_seg_markdown(results: dict[str, Any]) -> str:
    """Markdown: the summary row (mIoU, mF1, OA) and a per-class table (IoU, F1, P, R)."""
    lines = [
        "| dataset | split | protocol | images | mIoU | mF1 | OA |",
        "|---|---|---|---|---|---|---|",
        f"| {results.get('dataset', '?')} | {results.get('split', '?')} | "
        f"{results.get('protocol', '?')} | {results.get('images', '?')} | "
        f"{_cell(results['mIoU'])} | {_cell(results['mF1'])} | {_cell(results['OA'])} |",
        "",
        f"mIoU and mF1 over: {', '.join(results.get('eval_classes', []))}; OA over all classes. "
        "Percentages; – = undefined (F1 of a class with no true positive; any value of a class "
        "absent from ground truth and prediction), left out of the means.",
        "",
    ]
    if results.get("selection"):
        lines += [f"Checkpoint chosen by: {results['selection']}.", ""]
    lines += [
        "| class | IoU | F1 | precision | recall |",
        "|---|---|---|---|---|",
    ]
    for name, entry in results.get("per_class", {}).items():
        lines.append(
            f"| {name} | {_cell(entry['IoU'])} | {_cell(entry['F1'])} | "
            f"{_cell(entry['precision'])} | {_cell(entry['recall'])} |"
        )
    return "\n".join(lines) + "\n"
