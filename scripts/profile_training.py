"""Time the trainer's own steps on a config's real data, per phase; see --help.

    python scripts/profile_training.py --config configs/synthetic.yaml --steps 30
    python scripts/profile_training.py --task seg --config configs/synthetic_seg.yaml

The work is done by ``btdnet.tools.profile_training``; this script brings both tasks.
"""

import sys

from bicor.task import SegTask
from btdnet.task import ReferringTask
from btdnet.tools.profile_training import main

if __name__ == "__main__":
    sys.exit(main(tasks={"referring": ReferringTask.from_config, "seg": SegTask.from_config}))
