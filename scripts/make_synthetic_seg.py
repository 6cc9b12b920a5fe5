"""Write the synthetic closed-set land-cover set; see --help.

    python scripts/make_synthetic_seg.py --out datasets/synthetic_seg --train 400 --val 60

The same command as the installed ``bicor-make-synthetic`` (``bicor.data.synthetic_seg_cli``).
"""

from bicor.data.synthetic_seg_cli import main

if __name__ == "__main__":
    main()
