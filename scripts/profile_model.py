"""Profile a BTDNet variant: parameters, GFLOPs, forward/step times and memory.

The work is done by ``btdnet.tools.profile_model``; see --help.
"""

from btdnet.tools.profile_model import main

if __name__ == "__main__":
    main()
