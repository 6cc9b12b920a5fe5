"""Check a data set on disk before training: missing, unreadable and inconsistent files.

    python scripts/check_dataset.py --dataset rrsisd --root datasets/rrsisd
    python scripts/check_dataset.py --dataset refsegrs --root datasets/RefSegRS --json
    python scripts/check_dataset.py --dataset grefs --root datasets/grrsis   # gRefCOCO format
    python scripts/check_dataset.py --dataset vaihingen --root datasets/Vaihingen

Both kinds of data set: the installed ``btdnet-check-dataset`` (referring) and
``bicor-check-dataset`` (closed-set) each take one kind. Exit status 1: the set is unusable.
"""

from __future__ import annotations

import sys

from bicor.data.check_cli import CLOSED_SET_CHECKS
from btdnet.data.check_cli import REFERRING_CHECKS
from btdnet.data.check_cli import main as check_main


def main(argv: list[str] | None = None) -> int:
    """Check the data set named by --dataset (referring or closed-set)."""
    return check_main(argv, "check_dataset.py", {**REFERRING_CHECKS, **CLOSED_SET_CHECKS})


if __name__ == "__main__":
    sys.exit(main())
