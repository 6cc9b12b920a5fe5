"""Load-test btdnet-serve: latency and throughput at several client counts.

The work is done by ``btdnet.tools.load_test``; see --help.
"""

import sys

from btdnet.tools.load_test import main

if __name__ == "__main__":
    sys.exit(main())
