"""Benchmark a checkpoint, or a folder of predictions, on a referring or a closed-set split.

    python scripts/benchmark.py --checkpoint runs/rrsisd/checkpoints/best \\
        --dataset rrsisd --root datasets/rrsisd --split test --json results.json
    accelerate launch --num_processes 2 scripts/benchmark.py --checkpoint ... --amp bf16
    python scripts/benchmark.py --task seg --checkpoint runs/loveda/checkpoints/best \\
        --dataset loveda --root datasets/LoveDA --split val

--task referring (default) is the installed ``btdnet-benchmark``
(``btdnet.evaluation.benchmark_cli``); --task seg is ``bicor-benchmark``
(``bicor.benchmark_cli``). ``--task seg --help`` shows the closed-set options.
"""

from __future__ import annotations

import argparse
import sys

from bicor.benchmark_cli import main as seg_main
from btdnet.evaluation.benchmark_cli import main as referring_main

TASKS = {"referring": referring_main, "seg": seg_main}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark of ``--task`` with the other arguments."""
    choose = argparse.ArgumentParser(prog="benchmark.py", add_help=False)
    choose.add_argument("--task", choices=sorted(TASKS), default="referring")
    known, rest = choose.parse_known_args(sys.argv[1:] if argv is None else argv)
    return TASKS[known.task](rest, prog="benchmark.py")


if __name__ == "__main__":
    sys.exit(main())
