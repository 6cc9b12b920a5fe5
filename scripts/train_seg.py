"""Train BiCoR-Seg on LoveDA, Vaihingen, Potsdam or the synthetic set; see --help (accelerate).

The same command as the installed ``bicor-train`` (``bicor.train_cli``).
"""

import sys

from bicor.train_cli import main

if __name__ == "__main__":
    sys.exit(main(prog="train_seg.py"))
