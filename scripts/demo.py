"""End-to-end demo on the built-in synthetic data: generate, train, benchmark, draw.

python scripts/demo.py --out runs/demo
"""

import argparse
import sys

from btdnet.demo import run_demo


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    parser.add_argument("--config", default="configs/synthetic.yaml", help="training config")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (as in train_rrsis.py)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args()
    run_demo(
        args.out,
        config_path=args.config,
        overrides=args.overrides,
        show_progress=not args.no_progress,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
