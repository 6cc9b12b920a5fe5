"""Mutation testing of the modules listed in mutation.toml; see --help (btdnet.tools.mutation).

python scripts/mutation.py --module metrics/referring --sample 0
python scripts/mutation.py --compare runs/mutation-before runs/mutation
"""

import sys
from pathlib import Path

from btdnet.tools.mutation import main

if __name__ == "__main__":
    # This checkout is the project under test unless --repo says otherwise.
    sys.exit(main([f"--repo={Path(__file__).resolve().parents[1]}", *sys.argv[1:]]))
