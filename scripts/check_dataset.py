"""Check a data set on disk before training: missing, unreadable and inconsistent files.

    python scripts/check_dataset.py --dataset rrsisd --root datasets/rrsisd
    python scripts/check_dataset.py --dataset refsegrs --root datasets/RefSegRS --json
    python scripts/check_dataset.py --dataset grefs --root datasets/grrsis   # gRefCOCO format

Prints a report (or, with --json, one JSON object) and a one-line summary to paste into an
issue. Exits with status 1 when the data set cannot be used for training or evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bicor.registry import CLOSED_SET_DATASETS
from btdnet.data.check import check_referring_dataset, format_report, is_usable
from btdnet.registry import REFERRING_DATASETS

# data set name -> check(root) returning the report dict of btdnet.data.check.
CHECKS: dict[str, Callable[[Path], dict[str, Any]]] = {
    name: partial(check_referring_dataset, name) for name in REFERRING_DATASETS
}


def _check(name: str, root: Path) -> tuple[dict[str, Any], bool]:
    """Run the check of ``name``; return the report and whether the set is usable."""
    if name in CLOSED_SET_DATASETS:
        from bicor.data import check_closed_set_dataset
        from bicor.data import is_usable as closed_set_usable

        report = check_closed_set_dataset(name, root)
        return report, closed_set_usable(report)
    report = CHECKS[name](root)
    return report, is_usable(report)


def main(argv: list[str] | None = None) -> int:
    """Run the check named by ``--dataset`` on ``--root``; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=[*sorted(CHECKS), *CLOSED_SET_DATASETS])
    parser.add_argument("--root", required=True, type=Path, help="the data set's root folder")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(argv)
    report, usable = _check(args.dataset, args.root)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0 if usable else 1


if __name__ == "__main__":
    sys.exit(main())
