"""``btdnet-benchmark``: score a referring checkpoint, or a folder of prediction masks, on
RRSIS-D / RefSegRS / gRefCOCO-format sets (generalized referring: multi-target and no-target
expressions). ``bicor-benchmark`` (``bicor.benchmark_cli``) is the closed-set counterpart; both
share the options and the run of this module (``add_common_arguments``, ``run_benchmark``).

Runs as a plain command or under ``accelerate launch`` with several processes (every sample is
counted once; only the main process prints and writes reports)::

    btdnet-benchmark --checkpoint runs/rrsisd/checkpoints/best \\
        --dataset rrsisd --root datasets/rrsisd --split test --json results.json
    accelerate launch --num_processes 2 -m btdnet.evaluation.benchmark_cli --checkpoint ...
    btdnet-benchmark --predictions my_masks/ --dataset rrsisd \\
        --root datasets/rrsisd --split test --protocol original
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from btdnet.cli_options import add_amp_option, add_num_workers_option
from btdnet.errors import one_line
from btdnet.registry import REFERRING_DATASETS
from btdnet.safe_write import check_output_folder, check_output_path

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
  closed-set models: bicor-benchmark (scripts/benchmark.py --task seg).
"""


def add_common_arguments(
    parser: argparse.ArgumentParser,
    datasets: Sequence[str],
    protocols: Sequence[str] | None,
    protocol_help: str,
) -> None:
    """The options every benchmark takes: what to score, on which split, how, where to write.

    ``protocols=None`` leaves the protocol's check to the task (one line naming the choices).
    """
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="model folder (config.json + weights)")
    source.add_argument(
        "--predictions",
        type=Path,
        help="folder of prediction files to score (no model): referring <sample_id>.png masks, "
        "seg <image stem>.png/.tif class-id maps",
    )
    parser.add_argument("--dataset", choices=list(datasets), required=True)
    parser.add_argument("--root", type=Path, required=True, help="data set root folder")
    parser.add_argument("--split", choices=["val", "test"], required=True)
    parser.add_argument("--protocol", choices=protocols, default=None, help=protocol_help)
    parser.add_argument("--batch-size", type=int, default=8)
    add_num_workers_option(parser)
    add_amp_option(parser)
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown tables here")
    parser.add_argument(
        "--save-predictions",
        type=Path,
        help="write the predictions here: referring <sample_id>.png masks (original size), "
        "seg <image stem>.png class ids",
    )


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The referring benchmark's command line."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Score a referring-segmentation checkpoint or prediction masks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(
        parser, REFERRING_DATASETS, ["lavt", "original"], "lavt (default) or original"
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
    return parser


def _score_referring_checkpoint(args: argparse.Namespace, accelerator: Any) -> dict[str, Any]:
    """Load the checkpoint, run it over the split and return the metrics (every process)."""
    from btdnet.evaluation import evaluate_referring
    from btdnet.evaluation.prediction_files import prediction_filename
    from btdnet.evaluation.prediction_folder import claim_prediction_folder
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
    if args.save_predictions is not None:  # never replaces a file the benchmark did not write
        names = [prediction_filename(str(record.sample_id)) for record in dataset.records]
        if accelerator.is_main_process:
            claim_prediction_folder(args.save_predictions, names)
        accelerator.wait_for_everyone()
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
    args.protocol = args.protocol or "lavt"
    if args.save_predictions is not None:  # a link there would send the PNGs elsewhere
        check_output_folder(args.save_predictions)
    if args.checkpoint is not None:
        results = _score_referring_checkpoint(args, accelerator)
    else:
        results = _score_referring_files(args, accelerator)
    if results is not None:
        results = {**results, "dataset": args.dataset, "split": args.split}
    return results


def run_benchmark(
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, Any], dict[str, Any] | None],
    format_markdown: Callable[[dict[str, Any]], str],
    prog: str,
) -> int:
    """Run ``run(args, accelerator)`` and report: bad input is one ``PROG: error:`` line and exit
    1, each library warning one ``PROG: warning:`` line; the main process prints the Markdown
    and writes ``--json`` / ``--markdown``."""
    from btdnet.data.errors import DatasetError
    from btdnet.engine.accelerator import make_accelerator, resolve_mixed_precision
    from btdnet.errors import CheckpointError
    from btdnet.evaluation import write_json
    from btdnet.safe_write import write_text_atomic

    accelerator = make_accelerator(mixed_precision=resolve_mixed_precision(args.amp))
    try:
        check_report_paths(args)  # before any work: a report that cannot be written is refused
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            results = run(args, accelerator)
    except (DatasetError, CheckpointError, OSError, ValueError, MemoryError) as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return 1
    except RuntimeError as error:  # torch's out of memory (CPU allocator or CUDA) is one
        if not is_out_of_memory(error):
            raise
        print(f"{prog}: error: out of memory ({one_line(error, first=True)}); lower --window, "
              "--tta-scales, --window-batch or --batch-size", file=sys.stderr)  # fmt: skip
        return 1
    for item in caught:
        if issubclass(item.category, UserWarning):
            print(f"{prog}: warning: {one_line(item.message)}", file=sys.stderr)
        else:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    if accelerator.is_main_process and results is not None:
        text = format_markdown(results)
        print(text, end="")
        try:
            if args.json is not None:
                write_json(results, args.json)
            if args.markdown is not None:
                args.markdown.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(args.markdown, text)
        except OSError as error:  # e.g. a link planted while the benchmark ran
            print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
            return 1
    return 0


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is torch running out of memory (CUDA, or the CPU allocator)."""
    text = str(error).lower()
    return "out of memory" in text or "can't allocate memory" in text


def check_report_paths(args: argparse.Namespace) -> None:
    """Raise ``OSError`` naming the path when ``--json`` / ``--markdown`` is a link, a folder,
    or lies under a file, or ``--save-predictions`` is a link or a file (nothing has run yet)."""
    for path in (getattr(args, "json", None), getattr(args, "markdown", None)):
        if path is None:
            continue
        check_output_path(path)
        parent = next((p for p in Path(path).parents if p.exists() or p.is_symlink()), None)
        if parent is not None and not parent.is_dir():
            raise NotADirectoryError(f"{path}: {parent} is not a folder; cannot write the report")
    if getattr(args, "save_predictions", None) is not None:
        check_output_folder(args.save_predictions)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Parse the arguments, run the referring benchmark, print and write the reports."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    from btdnet.evaluation import format_markdown

    return run_benchmark(args, run_referring, format_markdown, parser.prog)


if __name__ == "__main__":
    sys.exit(main())
