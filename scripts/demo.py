"""End-to-end demo on the built-in synthetic data: generate, train, benchmark, draw.

    python scripts/demo.py --out runs/demo
    python scripts/demo.py --generalized --out runs/demo_generalized   # no-target + multi-target

The same command as the installed ``btdnet-demo`` (``btdnet.demo_cli``); see --help.
"""

import sys

from btdnet.demo_cli import main

if __name__ == "__main__":
    sys.exit(main())
