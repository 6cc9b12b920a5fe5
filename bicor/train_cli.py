"""``bicor-train``: train BiCoR-Seg on LoveDA, Vaihingen, Potsdam or the synthetic set.

bicor-train --config synthetic_seg.yaml --output-dir runs/synthetic_seg   # a shipped config
accelerate launch --num_processes 4 -m bicor.train_cli --config loveda.yaml
python scripts/train_seg.py --config configs/loveda.yaml                 # the same command
"""

from __future__ import annotations

import sys

from bicor.task import SegTask
from btdnet.engine.cli import main as train_main

DESCRIPTION = "Train BiCoR-Seg for closed-set remote-sensing image segmentation."


def main(argv: list[str] | None = None, prog: str = "bicor-train") -> int:
    """Train the closed-set task; returns the exit status."""
    return train_main(
        SegTask.from_config, prog=prog, description=DESCRIPTION, argv=argv, module="bicor.train_cli"
    )


if __name__ == "__main__":
    sys.exit(main())
