"""Generate the synthetic referring benchmark in RRSIS-D's format.

Usage:
    python scripts/make_synthetic.py --out datasets/synthetic --train 600 --val 100 --test 150
    python scripts/make_synthetic.py --out datasets/synthetic_g --generalized \\
        --multi-target-share 0.2 --no-target-share 0.25
    python scripts/make_synthetic.py --out datasets/synthetic_tiny --regime tiny

Split sizes are numbers of IMAGES (each image gives several samples). Read the result with
``build_referring_dataset("rrsisd", <out>, split, tokenizer)`` (``"grefs"`` for --generalized:
multi-target expressions such as "all the red vehicles" and no-target ones such as "the red
ship" where no ship is red, checked by the same geometry as the single-target ones).

A non-empty --out folder that the generator did not write (e.g. a real RRSIS-D root, which
uses the same file names) is refused unless --overwrite; the generator never deletes files it
did not write. Exit status: 0 done, 1 the folder or the files could not be written, 2 usage.
"""

from __future__ import annotations

import argparse
import sys

from btdnet.cli_options import add_progress_option, add_seed_option
from btdnet.data.synthetic import (
    REGIMES,
    format_grefs_stats,
    format_stats,
    generate_synthetic_grefs,
    generate_synthetic_rrsisd,
)
from btdnet.data.synthetic.writer import OutputFolderError


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The arguments of make_synthetic.py (btdnet-make-synthetic)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.splitlines()[1],
        epilog=__doc__.split("\n\n", 3)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="output folder (the data set's root)")
    parser.add_argument("--train", type=int, default=600, help="train images (default 600)")
    parser.add_argument("--val", type=int, default=100, help="val images (default 100)")
    parser.add_argument("--test", type=int, default=150, help="test images (default 150)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (256)")
    add_seed_option(parser)
    add_progress_option(parser)
    parser.add_argument(
        "--generalized",
        action="store_true",
        help="gRefCOCO format with multi-target and no-target expressions (--dataset grefs)",
    )
    parser.add_argument(
        "--multi-target-share",
        type=float,
        default=0.2,
        help="--generalized: expected share of multi-target expressions (0.2)",
    )
    parser.add_argument(
        "--no-target-share",
        type=float,
        default=0.25,
        help="--generalized: expected share of no-target expressions (0.25)",
    )
    parser.add_argument(
        "--regime",
        choices=sorted(REGIMES),
        default="default",
        help="stress regime (single-target set only): "
        + "; ".join(f"{r.name}: {r.description}" for r in REGIMES.values()).replace("%", "%%"),
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty folder the generator did not make (its file names only)",
    )
    return parser


def _generate(args: argparse.Namespace) -> str:
    common = dict(
        train=args.train,
        val=args.val,
        test=args.test,
        size=args.size,
        seed=args.seed,
        show_progress=args.progress,
        overwrite=args.overwrite,
    )
    if args.generalized:
        if args.regime != "default":
            raise ValueError("--regime applies to the single-target set (not --generalized)")
        stats = generate_synthetic_grefs(
            args.out,
            multi_target_share=args.multi_target_share,
            no_target_share=args.no_target_share,
            **common,
        )
        return format_grefs_stats(stats)
    return format_stats(generate_synthetic_rrsisd(args.out, regime=args.regime, **common))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Parse the arguments, generate the set and print its statistics; return the exit code."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        report = _generate(args)
    except OutputFolderError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # argument values
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
