"""Cost of the generalized-referring presence head: BTDNet with and without it.

The work is done by ``btdnet.tools.profile_presence``; see --help.
"""

from btdnet.tools.profile_presence import main

if __name__ == "__main__":
    main()
