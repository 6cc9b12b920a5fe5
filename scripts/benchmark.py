"""Benchmark a referring checkpoint, or a folder of prediction masks, on RRSIS-D / RefSegRS /
gRefCOCO-format sets (generalized referring: multi-target and no-target expressions).

Thin wrapper: the work is done by ``btdnet.evaluation``. Runs as a plain script or under
``accelerate launch`` with several processes (every sample is counted once; only the main
process prints and writes reports).

Examples::

    python scripts/benchmark.py --checkpoint runs/rrsisd/checkpoints/best \\
        --dataset rrsisd --root datasets/rrsisd --split test --json results.json
    accelerate launch --num_processes 2 scripts/benchmark.py --checkpoint ... --amp bf16
    python scripts/benchmark.py --predictions my_masks/ --dataset rrsisd \\
        --root datasets/rrsisd --split test --protocol original
    python scripts/benchmark.py --checkpoint runs/synthetic_generalized/checkpoints/best \\
        --dataset grefs --root runs/synthetic_generalized_data --split test
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bicor.registry import SEG_DATASETS
from btdnet.cli_options import add_amp_option, add_num_workers_option
from btdnet.errors import one_line
from btdnet.registry import REFERRING_DATASETS

EPILOG = """\
protocols:
  lavt      (default, the papers' protocol: LAVT, RMSIN, FIANet, ...) image and ground truth
            are resized to the evaluation size (the checkpoint's image size; 480 when scoring
            --predictions), the mask with nearest, and IoU is computed there.
  original  the prediction is up-sampled (bilinear on the logits) to the image's original
            size and scored against the original mask: what a user's mask looks like.
  Metrics: oIoU = sum(I)/sum(U); mIoU = mean(I/U) (a sample with U = 0 counts 0);
  Pr@X = share of samples with IoU >= X. Percentages with two decimals. Per-size buckets use
  the GT area at the original resolution (COCO: small < 32^2 <= medium < 96^2 <= large).

generalized referring (--dataset grefs, or any model with a presence head; ReLA's metrics):
  an empty predicted mask is the answer "no target" (an all-zero PNG with --predictions; a
  presence below --presence-threshold with --checkpoint). gIoU = mean per-sample IoU where a
  no-target sample answered empty scores 1 (else 0); cIoU = sum(I)/sum(U) over all samples;
  N_acc = no-target samples answered empty / no-target samples; T_acc = targeted samples
  answered non-empty / targeted samples; oIoU, mIoU, Pr@X over the targeted samples.

prediction files (--save-predictions writes them, --predictions reads them):
  one PNG per sample at the image's original size, 0 background / 255 object (any nonzero
  value counts as object; RGB accepted; a mis-sized file is resized with nearest), named
  <sample_id>.png: RRSIS-D <ref_id>-<sent_id>.png, RefSegRS <line>-<image_id>.png.

closed-set (--task seg, BiCoR-Seg checkpoints or prediction files; bicor/benchmark.py):
  --dataset synthetic_seg|loveda|vaihingen|potsdam, --protocol geoseg (default: Vaihingen and
  Potsdam means without clutter, OA over all classes) or mmseg (clutter included). Sliding
  windows of --window pixels (default: the checkpoint's crop size) every --stride pixels,
  logits averaged; one confusion matrix over all pixels. A class with no true positive has no F1
  ("-" in the table, null in JSON) and is left out of mF1.
  Test-time augmentation (bicor/tta.py; the logits of every view of every window are mapped
  back and averaged): --tta alone = horizontal x vertical flips (4 views); --tta WORDS, comma-
  separated among hflip, vflip, rot90, flips; --tta-scales S [S ...] multiplies the views by
  bicubic rescalings of each window (and back); --tta authors = the setting of the authors'
  test script for --dataset (ttach, as ShiJinghao566/BiCoR-Seg test_*.py): vaihingen flips x
  rot90 x scales 0.5 0.75 1 1.25 1.5 (40 views), loveda hflip x scales 0.75 1 1.25 1.5 (8),
  potsdam flips (4); --tta authors-d4 = the script's "-t d4", which the authors' configs name:
  the same for vaihingen and loveda, potsdam flips x scales 0.75 1 1.25 1.5 (16; which of the
  two Potsdam settings the paper used is not stated). The JSON's "tta" records the views used.
  The authors' setting in full:
  --window 1024 --stride 1024 --border pad --tta authors.
  --predictions DIR: one file per image of the split, named after the image file's stem
  (top_mosaic_09cm_area2.png, top_potsdam_2_13_RGB.png, 4191.png), at the image's size, holding
  class indices 0..K-1 in the toolkit's class order: single-band PNG/TIFF, or a palette/colour
  PNG/TIFF in the dataset's colours. Missing, extra, mis-sized or out-of-range files are errors
  naming the file. --save-predictions DIR (with --checkpoint) writes such files (palette PNGs),
  which score back to the same numbers.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        description="Score a referring-segmentation checkpoint or prediction masks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", choices=sorted(TASKS), default="referring", help="benchmark kind")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="model folder (config.json + weights)")
    source.add_argument(
        "--predictions",
        type=Path,
        help="folder of prediction files to score (no model): referring <sample_id>.png masks, "
        "seg <image stem>.png/.tif class-id maps",
    )
    parser.add_argument(
        "--dataset",
        choices=[*REFERRING_DATASETS, *SEG_DATASETS],
        required=True,
    )
    parser.add_argument("--root", type=Path, required=True, help="data set root folder")
    parser.add_argument("--split", choices=["val", "test"], required=True)
    parser.add_argument(
        "--protocol",
        choices=["lavt", "original", "geoseg", "mmseg"],
        default=None,
        help="referring: lavt (default) or original; seg: geoseg (default) or mmseg",
    )
    parser.add_argument("--window", type=int, default=None, help="seg: sliding-window size")
    parser.add_argument("--stride", type=int, default=None, help="seg: sliding-window step")
    parser.add_argument("--window-batch", type=int, default=4, help="seg: windows per forward")
    parser.add_argument(
        "--border",
        choices=["clamp", "pad"],
        default="clamp",
        help="seg: last window moved inside the image (clamp), or the image padded black at the "
        "bottom/right until the windows tile it (pad: GeoSeg's test patches, the authors')",
    )
    parser.add_argument(
        "--tta",
        nargs="?",
        const="flips",
        default=None,
        metavar="WORDS",
        help="seg: test-time augmentation; alone = h x v flips; 'authors' = the authors' setting "
        "for --dataset; or comma-separated hflip, vflip, rot90, flips (see below)",
    )
    parser.add_argument(
        "--tta-scales",
        type=float,
        nargs="+",
        default=None,
        metavar="S",
        help="seg: also average over these bicubic rescalings of every window (e.g. 0.75 1 1.25)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="evaluation size (default: the checkpoint's; 480 with --predictions)",
    )
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="expression length (default: checkpoint's)"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    add_num_workers_option(parser)
    add_amp_option(parser)
    parser.add_argument(
        "--presence-threshold",
        type=float,
        default=None,
        help="models with a presence head: below it the answer is 'no target' (default: the "
        "checkpoint's, 0.5)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="with --predictions: refuse a mask that is not at its image's size (default: "
        "resize it and warn)",
    )
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown tables here")
    parser.add_argument(
        "--save-predictions",
        type=Path,
        help="write the predictions here: referring <sample_id>.png masks (original size), "
        "seg <image stem>.png class ids",
    )
    return parser


def _score_referring_checkpoint(args: argparse.Namespace, accelerator: Any) -> dict[str, Any]:
    """Load the checkpoint, run it over the split and return the metrics (every process)."""
    from btdnet.evaluation import evaluate_referring
    from btdnet.evaluation.referring_eval import split_loader
    from btdnet.models import load_model

    model = load_model(args.checkpoint, training=False)
    image_size = args.image_size or model.config.image_size
    if image_size != model.config.image_size:
        raise ValueError(
            f"{args.checkpoint}: the model was built for --image-size {model.config.image_size}, "
            f"got {image_size}"
        )
    dataset, loader = split_loader(
        model,
        args.dataset,
        args.root,
        args.split,
        args.batch_size,
        accelerator,
        max_tokens=args.max_tokens,
        num_workers=args.num_workers,
    )
    model = model.to(accelerator.device)
    results = evaluate_referring(
        model,
        loader,
        accelerator,
        protocol=args.protocol,
        dataset=dataset,
        save_dir=args.save_predictions,
        presence_threshold=args.presence_threshold,
    )
    return {**results, "image_size": image_size, "checkpoint": str(args.checkpoint)}


def _score_referring_files(args: argparse.Namespace, accelerator: Any) -> dict[str, Any] | None:
    """Score a folder of prediction PNGs on the main process (no model involved)."""
    from btdnet.data import build_referring_dataset
    from btdnet.evaluation import score_prediction_files

    if args.save_predictions is not None:
        raise ValueError("--save-predictions needs --checkpoint (--predictions already are files)")
    results = None
    if accelerator.is_main_process:
        image_size = args.image_size or 480
        dataset = build_referring_dataset(
            args.dataset, args.root, args.split, None, image_size=image_size
        )
        results = score_prediction_files(
            dataset, args.predictions, args.protocol, strict=args.strict
        )
        results = {**results, "image_size": image_size, "predictions": str(args.predictions)}
    accelerator.wait_for_everyone()
    return results


def run_referring(args: argparse.Namespace, accelerator: Any) -> dict[str, Any] | None:
    """The referring benchmark; the results (on the main process at least) or ``None``."""
    if args.dataset not in REFERRING_DATASETS:
        raise ValueError(
            f"--task referring needs --dataset {', '.join(REFERRING_DATASETS[:-1])} or "
            f"{REFERRING_DATASETS[-1]}, not {args.dataset}"
        )
    if args.tta is not None or args.tta_scales is not None:
        raise ValueError("--tta / --tta-scales are for --task seg")
    args.protocol = args.protocol or "lavt"
    if args.protocol not in ("lavt", "original"):
        raise ValueError(f"--task referring needs --protocol lavt or original, not {args.protocol}")
    if args.checkpoint is not None:
        results = _score_referring_checkpoint(args, accelerator)
    else:
        results = _score_referring_files(args, accelerator)
    if results is not None:
        results = {**results, "dataset": args.dataset, "split": args.split}
    return results


def run_seg(args: argparse.Namespace, accelerator: Any) -> dict[str, Any] | None:
    """The closed-set benchmark of a checkpoint or prediction files (see ``bicor.benchmark``)."""
    from bicor.benchmark import run_seg as run

    return run(args, accelerator)


TASKS: dict[str, Callable[[argparse.Namespace, Any], dict[str, Any] | None]] = {
    "referring": run_referring,
    "seg": run_seg,
}


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmark, print and write the reports."""
    args = build_parser().parse_args(argv)
    from btdnet.data.errors import DatasetError
    from btdnet.engine.accelerator import make_accelerator, resolve_mixed_precision
    from btdnet.errors import CheckpointError
    from btdnet.evaluation import format_markdown, write_json
    from btdnet.safe_write import write_text_atomic

    accelerator = make_accelerator(mixed_precision=resolve_mixed_precision(args.amp))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            results = TASKS[args.task](args, accelerator)
    except (DatasetError, CheckpointError, OSError, ValueError, MemoryError) as error:
        print(f"benchmark.py: error: {one_line(error)}", file=sys.stderr)
        return 1
    for item in caught:
        if issubclass(item.category, UserWarning):
            print(f"benchmark.py: warning: {one_line(item.message)}", file=sys.stderr)
        else:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    if accelerator.is_main_process and results is not None:
        if args.task == "seg":
            from bicor.benchmark import format_seg_markdown

            text = format_seg_markdown(results)
        else:
            text = format_markdown(results)
        print(text, end="")
        if args.json is not None:
            write_json(results, args.json)
        if args.markdown is not None:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(args.markdown, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
