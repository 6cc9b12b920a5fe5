"""Choose a generalized model's presence threshold on a split, and optionally store it.

The same command as the installed ``btdnet-calibrate-presence``
(``btdnet.evaluation.calibrate_cli``); see --help.
"""

from __future__ import annotations

import sys

from btdnet.evaluation.calibrate_cli import main as run


def main(argv: list[str] | None = None) -> int:
    """The command, its messages named after this script."""
    return run(argv, prog="calibrate_presence.py")


if __name__ == "__main__":
    sys.exit(main())
