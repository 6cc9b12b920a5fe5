"""Generate the synthetic referring benchmark in RRSIS-D's format (or gRefCOCO's).

The same command as the installed ``btdnet-make-synthetic``
(``btdnet.data.synthetic.cli``); see --help.
"""

from __future__ import annotations

import sys

from btdnet.data.synthetic.cli import main as run


def main(argv: list[str] | None = None) -> int:
    """The command, its messages named after this script."""
    return run(argv, prog="make_synthetic.py")


if __name__ == "__main__":
    sys.exit(main())
