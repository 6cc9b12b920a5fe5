"""Ablation of BTDNet's parts over seeds: train, score, tabulate; see --help (resumable)."""

import sys

from btdnet.ablation.cli import main

if __name__ == "__main__":
    sys.exit(main())
