"""Write the synthetic closed-set land-cover set (layout: bicor/data/synthetic_seg.py).

python scripts/make_synthetic_seg.py --out datasets/synthetic_seg --train 400 --val 60
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bicor.data.synthetic_seg import CLASSES, write_synthetic_seg
from btdnet.cli_options import add_seed_option


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("datasets/synthetic_seg"))
    parser.add_argument("--train", type=int, default=400, help="training images")
    parser.add_argument("--val", type=int, default=60, help="validation images")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    add_seed_option(parser)
    args = parser.parse_args(argv)
    root = write_synthetic_seg(
        args.out, train=args.train, val=args.val, size=args.size, seed=args.seed
    )
    print(
        f"wrote {args.train} train + {args.val} val images of {args.size}x{args.size} "
        f"({len(CLASSES)} classes: {', '.join(CLASSES)}) to {root}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
