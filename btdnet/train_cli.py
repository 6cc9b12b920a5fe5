"""``btdnet-train``: train BTDNet on RRSIS-D, RefSegRS, gRefCOCO-format or the synthetic set.

btdnet-train --config synthetic.yaml --output-dir runs/synthetic     # a shipped config
accelerate launch --num_processes 2 -m btdnet.train_cli --config rrsisd.yaml
python scripts/train_rrsis.py --config configs/rrsisd.yaml           # the same command
"""

from __future__ import annotations

import sys

from btdnet.engine.cli import main as train_main
from btdnet.task import ReferringTask

DESCRIPTION = "Train BTDNet for referring remote-sensing image segmentation."


def main(argv: list[str] | None = None, prog: str = "btdnet-train") -> int:
    """Train the referring task; returns the exit status."""
    return train_main(
        ReferringTask.from_config,
        prog=prog,
        description=DESCRIPTION,
        argv=argv,
        module="btdnet.train_cli",
    )


if __name__ == "__main__":
    sys.exit(main())
