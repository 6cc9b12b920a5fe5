"""Write the HBIS heatmaps of one image: one picture per class per layer.

The same command as the installed ``bicor-heatmaps`` (``bicor.heatmaps_cli``); see --help.
"""

from __future__ import annotations

import sys

from bicor.heatmaps_cli import main as run


def main(argv: list[str] | None = None) -> int:
    """The command, its messages named after this script."""
    return run(argv, prog="show_heatmaps.py")


if __name__ == "__main__":
    sys.exit(main())
