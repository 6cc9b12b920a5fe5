"""Train BiCoR-Seg on LoveDA, Vaihingen, Potsdam or the synthetic set; see --help (accelerate)."""

import sys

from bicor.task import SegTask
from btdnet.engine.cli import main

if __name__ == "__main__":
    sys.exit(
        main(
            SegTask.from_config,
            prog="train_seg.py",
            description="Train BiCoR-Seg for closed-set remote-sensing image segmentation.",
        )
    )
