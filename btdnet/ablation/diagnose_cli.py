"""The command line of ``scripts/diagnose.py``: diagnose a trained BTDNet, compare variants."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Diagnose a trained BTDNet on a referring split: how well each BSC stage's sentence-to-pixel
map localises the referred object (area-matched IoU with the ground truth), what the
background stream predicts against 1 - ground truth, and the gradient norm of each module on
training batches. Writes OUT/diagnosis.json and OUT/diagnosis.png (a few samples: image,
truth, prediction, every stage's map, the background stream), and prints a summary.

With --run RUN (a training run that kept several checkpoints, e.g. trained with
--set train.checkpoint_every_steps=120 --set train.keep_checkpoints=20) it diagnoses every
checkpoint on the same batches and draws the measures over training: OUT/over_training.json
and OUT/over_training.png (each stage's map IoU beside what a map that ignores the target
scores, the target stream's IoU and the background stream's IoU with 1 - truth).

With --ablation DIR --variants A B it also lists, from the finished runs of an ablation folder,
where variant A and variant B differ: by object category (test oIoU), by object size (thirds
of the test split by the share of the image the target covers; btdnet/evaluation/
relative_size.py) and by kind of expression (relation, position, colour, category only;
btdnet/evaluation/expression_types.py), as means and spreads over their seeds, drawn in
OUT/comparison.png. After an lr sweep the names carry the rate (demo@lr0.5). A run recorded
before sizes or kinds were is scored again from its kept checkpoint, if --keep-checkpoints
kept it.
"""

EPILOG = """\
examples:
  python scripts/diagnose.py --checkpoint runs/demo/train/checkpoints/best \\
      --data-root runs/demo/data --out runs/diagnosis
  python scripts/diagnose.py --run runs/demo/train --data-root runs/demo/data \\
      --out runs/diagnosis/over_training
  python scripts/diagnose.py --ablation runs/ablation --variants demo@lr0.5 \\
      family_baseline@lr1 --out runs/diagnosis

exit status: 0 done, 1 a checkpoint, data or folder problem (one line says why), 2 usage.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diagnose.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", type=Path, help="a BTDNet model folder")
    parser.add_argument(
        "--run", type=Path, help="a training run folder: diagnose each checkpoint it kept"
    )
    parser.add_argument("--data-root", type=Path, help="referring data (RRSIS-D format)")
    parser.add_argument("--split", default="test", help="split to diagnose on (test)")
    parser.add_argument("--batches", type=int, default=8, help="batches to read (8)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (8)")
    parser.add_argument("--examples", type=int, default=4, help="samples drawn (4)")
    parser.add_argument("--ablation", type=Path, help="an ablation folder (scripts/ablate.py)")
    parser.add_argument("--variants", nargs=2, metavar=("A", "B"), help="two variants to compare")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    return parser


def _checked(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.checkpoint is None and args.run is None and args.ablation is None:
        parser.error(
            "give --checkpoint or --run (with --data-root), or --ablation (with --variants)"
        )
    for name in ("checkpoint", "run"):
        if getattr(args, name) is not None and args.data_root is None:
            parser.error(f"--{name} needs --data-root")
    if args.ablation is not None and args.variants is None:
        parser.error("--ablation needs --variants A B")
    for name in ("batches", "batch_size", "examples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")


def _diagnose_checkpoint(args: argparse.Namespace) -> dict[str, Any]:
    from btdnet.ablation.diagnosis import diagnose, draw_examples
    from btdnet.engine.accelerator import make_accelerator
    from btdnet.evaluation.referring_eval import split_loader
    from btdnet.models import load_model

    accelerator = make_accelerator()
    model = load_model(args.checkpoint, training=True).to(accelerator.device)
    _, loader = split_loader(
        model, "rrsisd", args.data_root, args.split, args.batch_size, accelerator
    )
    found = diagnose(model, loader, max_batches=args.batches, keep_examples=args.examples)
    examples = found.pop("examples")
    if examples:
        found["figure"] = str(draw_examples(examples, args.out / "diagnosis.png"))
    return found


def _diagnose_run(args: argparse.Namespace) -> dict[str, Any]:
    from btdnet.ablation.diagnosis import diagnose
    from btdnet.ablation.diagnosis_curve import draw_curves, over_training, run_checkpoints
    from btdnet.engine.accelerator import make_accelerator
    from btdnet.evaluation.referring_eval import split_loader
    from btdnet.models import load_model

    checkpoints = run_checkpoints(args.run)
    accelerator = make_accelerator()
    loaders: list[Any] = []

    def diagnose_one(folder: Path) -> dict[str, Any]:
        model = load_model(folder, training=True).to(accelerator.device)
        if not loaders:  # one loader: every checkpoint reads the same batches
            loaders.append(
                split_loader(
                    model, "rrsisd", args.data_root, args.split, args.batch_size, accelerator
                )[1]
            )
        return diagnose(model, loaders[0], max_batches=args.batches, keep_examples=0)

    rows = over_training(checkpoints, diagnose_one)
    figure = draw_curves(rows, args.out / "over_training.png")
    return {"rows": rows, "figure": str(figure)}


def _compare(args: argparse.Namespace) -> dict[str, Any]:
    from btdnet.ablation.comparison_figure import draw_comparison
    from btdnet.ablation.diagnosis import category_gaps
    from btdnet.ablation.plan import RESULT_NAME
    from btdnet.ablation.rescore import EXPRESSION_KEY, SIZE_KEY, missing_records, score_records
    from btdnet.evaluation.relative_size import SIZE_THIRDS

    a, b = args.variants
    results = []
    for path in sorted((args.ablation / "runs").glob(f"*/seed-*/{RESULT_NAME}")):
        result = json.loads(path.read_text(encoding="utf-8"))
        if result.get("variant") in (a, b) and missing_records(result):
            scores = score_records(path.parent, args.ablation / "data")
            if scores is not None:  # an older run: scored again from its kept checkpoint
                result = {**scores, **result}
        results.append(result)
    comparison = {
        "variants": [a, b],
        "per_category": category_gaps(results, a, b, "per_category"),
        "per_size": category_gaps(results, a, b, "per_size"),
        "per_relative_size": _in_order(category_gaps(results, a, b, SIZE_KEY), SIZE_THIRDS),
        "per_expression": category_gaps(results, a, b, EXPRESSION_KEY),
    }
    if not any(comparison[key] for key in ("per_category", "per_expression")):
        raise ValueError(
            f"{args.ablation}: no finished run of both {a!r} and {b!r} (names as in its runs/ "
            f"folder, e.g. demo@lr1 after an lr sweep)"
        )
    comparison["figure"] = str(draw_comparison(comparison, args.out / "comparison.png"))
    return comparison


def _in_order(gaps: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``gaps`` in the order of ``names`` (sizes read smallest first, not by gap)."""
    return {name: gaps[name] for name in names if name in gaps}


def _summary(report: dict[str, Any]) -> str:
    lines = []
    found = report.get("checkpoint")
    if found:
        maps = ", ".join("-" if v is None else f"{100 * v:.1f}" for v in found["map_iou"])
        lines.append(f"samples {found['samples']}; BSC map IoU per stage (%): {maps}")
        lines.append(
            f"target stream IoU {100 * (found['target_iou'] or 0):.1f}%, background stream "
            f"IoU with 1 - truth {100 * (found['background_iou'] or 0):.1f}%, its "
            f"not-background's IoU with the truth "
            f"{100 * (found['background_complement_iou'] or 0):.1f}%"
        )
        norms = ", ".join(f"{k} {v:.3g}" for k, v in found["gradient_norms"].items())
        lines.append(f"gradient norms: {norms}")
    for row in report.get("over_training", {}).get("rows", []):
        maps = ", ".join("-" if v is None else f"{100 * v:.1f}" for v in row["map_iou"])
        target, background = (
            100 * (row.get(k) or 0) for k in ("target_iou", "background_complement_iou")
        )
        lines.append(
            f"step {row['step']}: map IoU per stage (%) {maps}; target {target:.1f}%, "
            f"background's not-background {background:.1f}%"
        )
    compared = report.get("comparison")
    if compared:
        a, b = compared["variants"]
        for key in ("per_relative_size", "per_expression", "per_category"):
            for name, row in list(compared[key].items())[:6]:
                lines.append(f"{key[4:]} {name}: {a} {row[a]:.2f} vs {b} {row[b]:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the diagnosis; return an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _checked(parser, args)
    from btdnet.engine.cli import LIBRARY_ERRORS, one_line
    from btdnet.safe_write import check_output_folder, write_text_atomic

    try:
        check_output_folder(args.out)
        args.out.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {}
        if args.checkpoint is not None:
            report["checkpoint"] = _diagnose_checkpoint(args)
        if args.run is not None:
            report["over_training"] = _diagnose_run(args)
            write_text_atomic(
                args.out / "over_training.json",
                json.dumps(report["over_training"], indent=2) + "\n",
            )
        if args.ablation is not None:
            report["comparison"] = _compare(args)
        write_text_atomic(args.out / "diagnosis.json", json.dumps(report, indent=2) + "\n")
    except LIBRARY_ERRORS as error:
        print(f"diagnose.py: error: {one_line(error)}", file=sys.stderr)
        return 1
    print(_summary(report))
    print(f"written: {args.out / 'diagnosis.json'}")
    return 0
