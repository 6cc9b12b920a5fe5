"""Benchmark scene-scale prediction: time, tiles/s, km^2/min and peak memory vs scene size.

The work is done by ``btdnet.tools.benchmark_scene``; see --help.
"""

from btdnet.tools.benchmark_scene import main

if __name__ == "__main__":
    main()
