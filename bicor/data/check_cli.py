"""``bicor-check-dataset``: check a closed-set data set on disk (LoveDA, Vaihingen, Potsdam).

    bicor-check-dataset --dataset vaihingen --root datasets/Vaihingen [--json]

The report and exit status of ``btdnet-check-dataset`` (``btdnet.data.check_cli``).
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

from bicor.data.check import (
    BLOCKING_KINDS,
    PROBLEM_MEANINGS,
    check_closed_set_dataset,
    is_usable,
)
from bicor.registry import CLOSED_SET_DATASETS
from btdnet.data.check_cli import Check
from btdnet.data.check_cli import main as check_main


def check_closed_set(name: str, root: Path) -> tuple[dict[str, Any], bool]:
    """The closed-set check of ``name`` on ``root`` and whether the set is usable."""
    report = check_closed_set_dataset(name, root)
    usable = is_usable(report)
    kinds = sorted({problem["kind"] for problem in report["problems"]})
    report["usable"] = usable  # the report's verdict is the exit status's
    report["problem_kinds"] = {
        kind: {
            "level": "error" if kind in BLOCKING_KINDS else "warning",
            "meaning": PROBLEM_MEANINGS.get(kind, ""),
        }
        for kind in kinds
    }
    return report, usable


CLOSED_SET_CHECKS: dict[str, Check] = {
    name: partial(check_closed_set, name) for name in CLOSED_SET_DATASETS
}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Check a closed-set data set; return the exit status."""
    return check_main(argv, prog, CLOSED_SET_CHECKS)


if __name__ == "__main__":
    sys.exit(main())
