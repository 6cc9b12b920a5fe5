"""Upload a checkpoint folder to the Hugging Face Hub with a generated model card.

The same command as the installed ``btdnet-push-to-hub`` (``btdnet.models.push_cli``); see --help.
"""

from __future__ import annotations

import sys

from btdnet.models.push_cli import main as run


def main(argv: list[str] | None = None) -> int:
    """The command, its messages named after this script."""
    return run(argv, prog="push_to_hub.py")


if __name__ == "__main__":
    sys.exit(main())
