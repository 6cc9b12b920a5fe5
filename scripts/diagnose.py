"""Diagnose a trained BTDNet (BSC maps, background stream, gradients); see --help."""

import sys

from btdnet.ablation.diagnose_cli import main

if __name__ == "__main__":
    sys.exit(main())
