"""Train BTDNet on RRSIS-D, RefSegRS or the synthetic set; see --help (works with accelerate).

The same command as the installed ``btdnet-train`` (``btdnet.train_cli``).
"""

import sys

from btdnet.train_cli import main

if __name__ == "__main__":
    sys.exit(main(prog="train_rrsis.py"))
