"""Train BTDNet on RRSIS-D, RefSegRS or the synthetic set; see --help (works with accelerate)."""

import sys

from btdnet.engine.cli import main
from btdnet.task import ReferringTask

if __name__ == "__main__":
    sys.exit(
        main(
            ReferringTask.from_config,
            prog="train_rrsis.py",
            description="Train BTDNet for referring remote-sensing image segmentation.",
        )
    )
