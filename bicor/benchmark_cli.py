"""``bicor-benchmark``: score a BiCoR-Seg checkpoint, or another model's class maps, on a
closed-set split (``scripts/benchmark.py --task seg``).

    bicor-benchmark --checkpoint runs/loveda/checkpoints/best --dataset loveda \\
        --root datasets/LoveDA --split val
    accelerate launch --num_processes 2 -m bicor.benchmark_cli --checkpoint ...
    bicor-benchmark --predictions other_model/ --dataset vaihingen --root datasets/Vaihingen \\
        --split test
"""

from __future__ import annotations

import argparse
import sys

from bicor.benchmark import SEG_PROTOCOLS, format_seg_markdown, run_seg
from bicor.registry import SEG_DATASETS
from btdnet.evaluation.benchmark_cli import add_common_arguments, run_benchmark

EPILOG = """\
closed-set (BiCoR-Seg checkpoints or prediction files; bicor/benchmark.py):
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


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The closed-set benchmark's command line."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Score a closed-set segmentation checkpoint or class-map files.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # --protocol is checked by run_seg: a referring protocol is one line naming the choices.
    add_common_arguments(
        parser, SEG_DATASETS, None, f"{' or '.join(SEG_PROTOCOLS)} (default {SEG_PROTOCOLS[0]})"
    )
    parser.add_argument("--window", type=int, default=None, help="sliding-window size")
    parser.add_argument("--stride", type=int, default=None, help="sliding-window step")
    parser.add_argument("--window-batch", type=int, default=4, help="windows per forward")
    parser.add_argument(
        "--border",
        choices=["clamp", "pad"],
        default="clamp",
        help="last window moved inside the image (clamp), or the image padded black at the "
        "bottom/right until the windows tile it (pad: GeoSeg's test patches, the authors')",
    )
    parser.add_argument(
        "--tta",
        nargs="?",
        const="flips",
        default=None,
        metavar="WORDS",
        help="test-time augmentation; alone = h x v flips; 'authors' = the authors' setting "
        "for --dataset; or comma-separated hflip, vflip, rot90, flips (see below)",
    )
    parser.add_argument(
        "--tta-scales",
        type=float,
        nargs="+",
        default=None,
        metavar="S",
        help="also average over these bicubic rescalings of every window (e.g. 0.75 1 1.25)",
    )
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Parse the arguments, run the closed-set benchmark, print and write the reports."""
    parser = build_parser(prog)
    return run_benchmark(parser.parse_args(argv), run_seg, format_seg_markdown, parser.prog)


if __name__ == "__main__":
    sys.exit(main())
