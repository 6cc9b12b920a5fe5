"""Check a data set on disk before training: missing, unreadable and inconsistent files.

    btdnet-check-dataset --dataset rrsisd --root datasets/rrsisd
    btdnet-check-dataset --dataset refsegrs --root datasets/RefSegRS --json
    btdnet-check-dataset --dataset grefs --root datasets/grrsis   # gRefCOCO format
    bicor-check-dataset --dataset vaihingen --root datasets/Vaihingen
    python scripts/check_dataset.py ...   # either kind

Prints a report (or, with --json, one JSON object) and a one-line summary to paste into an
issue. Exits with status 1 when the data set cannot be used for training or evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from btdnet.data.check import check_referring_dataset, format_report, is_usable
from btdnet.registry import REFERRING_DATASETS

# A data set's check: root -> (the report dict of btdnet.data.check, whether the set is usable).
Check = Callable[[Path], tuple[dict[str, Any], bool]]


def check_referring(name: str, root: Path) -> tuple[dict[str, Any], bool]:
    """The referring check of ``name`` on ``root`` and whether the set is usable."""
    report = check_referring_dataset(name, root)
    return report, is_usable(report)


REFERRING_CHECKS: dict[str, Check] = {
    name: partial(check_referring, name) for name in REFERRING_DATASETS
}


def main(
    argv: list[str] | None = None,
    prog: str | None = None,
    checks: Mapping[str, Check] | None = None,
) -> int:
    """Run the check named by ``--dataset`` on ``--root``; return the exit status.

    ``checks`` (default: the referring ones) maps each ``--dataset`` choice to its check.
    """
    checks = REFERRING_CHECKS if checks is None else checks
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=sorted(checks))
    parser.add_argument("--root", required=True, type=Path, help="the data set's root folder")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(argv)
    report, usable = checks[args.dataset](args.root)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0 if usable else 1


if __name__ == "__main__":
    sys.exit(main())
