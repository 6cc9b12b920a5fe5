"""End-to-end demo on the built-in synthetic data: generate, train, benchmark, draw.

btdnet-demo --out runs/demo                  (or: python scripts/demo.py --out runs/demo)
btdnet-demo --generalized --out runs/demo_generalized   # no-target + multi-target
"""

import argparse
import sys

from btdnet.cli_options import add_progress_option
from btdnet.demo import run_demo
from btdnet.demo_generalized import run_generalized_demo
from btdnet.engine.cli import add_overrides_argument


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the demo; return the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--out", default=None, help="output folder (default: runs/demo, runs/demo_generalized)"
    )
    parser.add_argument(
        "--config",
        default=None,
        help="training config: a file, or a shipped config's name (default: synthetic.yaml, "
        "with --generalized synthetic_generalized.yaml: configs/ of the source)",
    )
    parser.add_argument(
        "--generalized",
        action="store_true",
        help="generalized referring: gRefCOCO-format synthetic set with multi-target and "
        "no-target expressions, the presence head, and gIoU/cIoU/N_acc/T_acc "
        "(targets: gIoU >= 55, N_acc >= 80, T_acc >= 80; the wall time is reported)",
    )
    add_overrides_argument(parser, "override a config value (as in train_rrsis.py)")
    add_progress_option(parser)
    args = parser.parse_args(argv)
    run, out, config = (
        (run_generalized_demo, "runs/demo_generalized", "synthetic_generalized.yaml")
        if args.generalized
        else (run_demo, "runs/demo", "synthetic.yaml")
    )
    run(
        args.out or out,
        config_path=args.config or config,
        overrides=args.overrides,
        show_progress=args.progress,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
