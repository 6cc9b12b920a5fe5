"""Choose a generalized model's presence threshold on a split, and optionally store it.

Runs the checkpoint once over the split (default: val), scores every threshold of the grid
0.01 ... 0.99 with ReLA's gIoU, cIoU, N_acc and T_acc, prints the table (every 0.05, and each
row within 0.03 of the choice; --json writes all 99) and the chosen value:

  balanced  (default) the largest min(N_acc, T_acc); ties: the better gIoU, then closest to 0.5
  gIoU      the best gIoU; ties: closest to 0.5

--store writes the chosen value into the checkpoint's config.json (the weights are not touched),
so btdnet-predict, btdnet-serve and benchmark.py use it. Choose on val and report test: choosing
on the split you report flatters it. See docs/generalized.md.

    python scripts/calibrate_presence.py --checkpoint runs/x/checkpoints/best \\
        --dataset grefs --root datasets/grefs --split val --store
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from btdnet.errors import one_line
from btdnet.evaluation.presence_calibration import CRITERIA


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="model folder with a presence head")
    parser.add_argument("--dataset", default="grefs", help="dataset format (default: grefs)")
    parser.add_argument("--root", required=True, help="dataset folder")
    parser.add_argument("--split", default="val", help="split to choose on (default: val)")
    parser.add_argument("--criterion", default="balanced", choices=CRITERIA, help="see above")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--store", action="store_true", help="write the chosen threshold into config.json"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the sweep here")
    return parser


def calibrate(args: argparse.Namespace) -> dict:
    """Sweep the split and return ``presence_sweep``'s dict (plus the split)."""
    from btdnet.engine.accelerator import make_accelerator
    from btdnet.evaluation.presence_calibration import presence_sweep
    from btdnet.evaluation.referring_eval import split_loader
    from btdnet.models import load_model

    model = load_model(args.checkpoint, training=False).eval()
    accelerator = make_accelerator()
    _, loader = split_loader(
        model, args.dataset, args.root, args.split, args.batch_size, accelerator
    )
    sweep = presence_sweep(
        model.to(accelerator.device), loader, accelerator, criterion=args.criterion
    )
    return {**sweep, "split": args.split, "checkpoint": str(args.checkpoint)}


def format_table(sweep: dict) -> str:
    """The sweep as a Markdown table: the rows at multiples of 0.05 and those within 0.03 of the
    chosen threshold, the chosen row marked."""
    lines = ["| threshold | gIoU | cIoU | N_acc | T_acc |", "|---|---|---|---|---|"]
    chosen = sweep["threshold"]
    for row in sweep["table"]:
        on_coarse_grid = round(row["threshold"] * 100) % 5 == 0
        if not on_coarse_grid and abs(row["threshold"] - chosen) > 0.03 + 1e-9:
            continue
        mark = " **chosen**" if row["threshold"] == chosen else ""
        cells = [row[k] for k in ("gIoU", "cIoU", "N_acc", "T_acc")]
        text = " | ".join("-" if v is None else f"{v:.2f}" for v in cells)
        lines.append(f"| {row['threshold']:.2f}{mark} | {text} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The command (``prog``: the name its messages start with; default: the program's)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    from btdnet.data.errors import DatasetError
    from btdnet.errors import CheckpointError
    from btdnet.evaluation.presence_calibration import store_presence_threshold
    from btdnet.safe_write import write_text_atomic

    try:
        sweep = calibrate(args)
        if args.store:
            store_presence_threshold(args.checkpoint, sweep["threshold"])
        if args.json is not None:
            write_text_atomic(args.json, json.dumps(sweep, indent=2) + "\n")
    except (DatasetError, CheckpointError, OSError, ValueError) as error:
        print(f"{parser.prog}: error: {one_line(error, first=True)}", file=sys.stderr)
        return 1
    print(f"{args.split}, {sweep['samples']} samples:\n{format_table(sweep)}")
    stored = f"; written into {Path(args.checkpoint) / 'config.json'}" if args.store else ""
    print(f"presence threshold {sweep['threshold']:.2f} ({sweep['criterion']}){stored}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
