"""Segment what a text refers to in an image: ``python scripts/predict.py --help``.

The same command as the ``btdnet-predict`` console script (``btdnet.predict.cli``).
"""

import sys

from btdnet.predict.cli import main

if __name__ == "__main__":
    sys.exit(main())
