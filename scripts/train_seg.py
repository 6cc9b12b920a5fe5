"""Train BiCoR-Seg on LoveDA, Vaihingen, Potsdam or the synthetic set; see --help (accelerate)."""

import sys

from bicor.task import SegTask, prepare_seg_data
from btdnet.engine.cli import main

if __name__ == "__main__":
    sys.exit(
        main(
            SegTask,
            prog="train_seg.py",
            description="Train BiCoR-Seg for closed-set remote-sensing image segmentation.",
            prepare=prepare_seg_data,
        )
    )
