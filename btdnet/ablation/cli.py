"""The command line of ``scripts/ablate.py`` (kept here so that it is tested)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from btdnet.ablation.plan import (
    MARK_NAME,
    LaunchInfo,
    detach_from_launcher,
    launch_info,
    plan_runs,
    share_of,
)
from btdnet.ablation.sweep import (
    at_factor,
    check_factors,
    choose_factors,
    format_sweep,
    sweep_runs,
)
from btdnet.ablation.variants import (
    ABLATION_VARIANTS,
    DEMO_VARIANTS,
    READING_VARIANTS,
    AblationVariant,
    select_variants,
)
from btdnet.cli_options import add_progress_option

DESCRIPTION = """\
Measure what each part of BTDNet buys: train a config under named variants (each a set of
--set switches) and several seeds, score every run on the synthetic test split (true and
swapped expressions), and write the table of mean and spread over seeds.

Each run lives in OUT/runs/<variant>/seed-<k>/ and is trained by the project's trainer.
A finished run (its result.json exists) is never repeated; an interrupted one resumes from
its last checkpoint: run the same command again. The table (OUT/ablation.md, .json, .png)
is rewritten from every finished run at the end, or alone with --table-only.

On a CPU the runs go one after another. Under `accelerate launch --num_processes N` (N GPUs)
each process takes whole variants (round-robin) and trains them alone on its own GPU.
"""

EPILOG = """\
variants (--variants NAME ...; default: all of these, in this order):
{variants}

alternative readings (run only when named; docs/method.md, "Readings tried"):
{readings}

the full-length table at the demo's recipe (run only when named; docs/ablation.md):
{demo}

examples:
  python scripts/ablate.py --config configs/ablation.yaml --out runs/ablation
  python scripts/ablate.py --config configs/ablation.yaml --out runs/ablation_distractors \\
      --set data.generate_synthetic.regime=distractors
  accelerate launch --multi_gpu --num_processes 4 scripts/ablate.py --config ... --out ...
  python scripts/ablate.py --config configs/synthetic.yaml --out runs/ablation_full \\
      --variants demo family_baseline --seeds 0 1 2 3 4 --lr-factors 0.25 0.5 1 2
  python scripts/ablate.py --out runs/ablation --table-only

exit status: 0 done, 1 a run or the folder failed (one line says why), 2 usage.
"""


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {v.name:<20} {v.description}" for v in ABLATION_VARIANTS.values())
    readings = "\n".join(f"  {v.name:<20} {v.description}" for v in READING_VARIANTS.values())
    demo = "\n".join(f"  {v.name:<26} {v.description}" for v in DEMO_VARIANTS.values())
    parser = argparse.ArgumentParser(
        prog="ablate.py",
        description=DESCRIPTION,
        epilog=EPILOG.format(variants=listing, readings=readings, demo=demo),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, help="training config (YAML); not needed with --table-only"
    )
    parser.add_argument("--out", type=Path, required=True, help="the ablation folder")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value for every run (as in train_rrsis.py)",
    )
    parser.add_argument("--variants", nargs="+", metavar="NAME", help="variants (default all)")
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="K", help="seeds (0 1 2)"
    )
    parser.add_argument(
        "--order",
        choices=("seed", "variant"),
        default="seed",
        help="seed: every variant's first seed before any second one (default); "
        "variant: all seeds of a variant before the next",
    )
    parser.add_argument("--title", default=None, help="table title (default: the folder name)")
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep each finished run's checkpoints (default: removed once it is scored)",
    )
    parser.add_argument(
        "--lr-factors",
        nargs="+",
        type=float,
        metavar="F",
        help="first sweep each variant's learning rate (config lr x F) at --sweep-seed, keep "
        "per variant the F with the best validation oIoU, then run the seeds at it "
        "(OUT/lr_sweep.md); e.g. --lr-factors 0.25 0.5 1 2",
    )
    parser.add_argument(
        "--sweep-seed", type=int, default=0, metavar="K", help="seed of the lr sweep (0)"
    )
    parser.add_argument(
        "--table-only", action="store_true", help="only rewrite the table from finished runs"
    )
    parser.add_argument(
        "--fill-records",
        action="store_true",
        help="first score again, from its kept checkpoint, every finished run recorded before "
        "the per-kind-of-expression and per-size records existed, and add them to its "
        "result.json (runs that kept no checkpoint are named and left as they are)",
    )
    add_progress_option(parser)
    return parser


def swept_variants(
    args: argparse.Namespace, variants: list[AblationVariant], base: dict, info: LaunchInfo
) -> list[AblationVariant] | None:
    """Run (or resume) the learning-rate sweep; each variant at its chosen rate, or None when
    other processes' sweep runs are not finished yet (run the command again then)."""
    from btdnet.ablation import runner
    from btdnet.safe_write import write_text_atomic

    factors = check_factors(args.lr_factors)
    base_lr = float(base["train"]["lr"])
    sweep = sweep_runs(variants, factors, base_lr)
    if not args.table_only:
        mine = share_of(plan_runs(args.out, sweep, [args.sweep_seed]), info)
        print(f"learning-rate sweep: {len(mine)} runs at seed {args.sweep_seed}")
        runner.run_ablation(
            mine, base, show_progress=args.progress, keep_checkpoints=args.keep_checkpoints
        )
    results = runner.collect_results(args.out)
    chosen, missing = choose_factors(results, variants, factors, seed=args.sweep_seed)
    text = format_sweep(results, variants, factors, chosen, base_lr=base_lr, seed=args.sweep_seed)
    write_text_atomic(args.out / "lr_sweep.md", text)
    if missing:
        print(
            f"the lr sweep of {', '.join(missing)} is not finished (another process runs it); "
            "run the same command again when it is"
        )
        return None
    return [at_factor(v, chosen[v.name], base_lr) for v in variants]


def main(argv: list[str] | None = None) -> int:
    """Run the ablation (or this process's share of it); return an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config is None and (not args.table_only or args.lr_factors):
        parser.error("--config is required (except with --table-only without --lr-factors)")
    info = launch_info(os.environ)
    # Before anything starts CUDA: this process becomes a lone worker on its own GPU.
    detach_from_launcher(os.environ, info, cuda=True)
    from btdnet.ablation import runner  # torch and the model after the environment is set
    from btdnet.engine.cli import LIBRARY_ERRORS
    from btdnet.engine.config import load_config
    from btdnet.errors import one_line

    title = args.title or args.out.name
    try:
        variants = select_variants(args.variants)
        if args.table_only and not (args.out / MARK_NAME).is_file():
            raise runner.AblationFolderError(f"{args.out}: not an ablation folder (no {MARK_NAME})")
        base = None
        if args.config is not None:
            base = runner.base_config(load_config(args.config, args.overrides), args.out)
        if not args.table_only:
            runner.prepare_folder(
                args.out, base, local_rank=info.local_rank, show_progress=args.progress
            )
        if args.fill_records and info.rank == 0:
            from btdnet.ablation.rescore import fill_missing_records

            filled, left = fill_missing_records(args.out)
            print(f"records added to {len(filled)} runs; {len(left)} kept no checkpoint")
        if args.lr_factors:
            variants = swept_variants(args, variants, base, info)
            if variants is None:
                return 0
        runs = plan_runs(args.out, variants, args.seeds, order=args.order)
        if not args.table_only:
            mine = share_of(runs, info)
            if info.world_size > 1:
                print(f"process {info.rank}/{info.world_size}: {len(mine)} runs")
            runner.run_ablation(
                mine,
                base,
                show_progress=args.progress,
                keep_checkpoints=args.keep_checkpoints,
                worker=info.rank,
            )
        summary, files = runner.write_ablation_tables(args.out, variants, title=title)
    except KeyboardInterrupt:
        print("ablate.py: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except LIBRARY_ERRORS as error:
        print(f"ablate.py: error: {one_line(error, first=True)}", file=sys.stderr)
        return 1
    print(f"{summary['runs_finished']} of {len(runs)} runs finished; table:")
    for path in files:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
