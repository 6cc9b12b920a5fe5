"""Time the trainer's own steps on a config's real data: where does a training step go?

Runs the training loop of ``scripts/train_rrsis.py`` (or ``train_seg.py`` with ``--task seg``)
for ``--warmup`` + ``--steps`` updates into a temporary folder (no checkpoint, log or tracker is
kept; a synthetic set the config generates on first use is written to its ``data.root``, as
training would), and reports the median wall time per update of each phase:

  data         waiting for the batch (loading, collation, transfer to the device)
  forward      the model and its loss
  backward     the loss's finiteness check and the backward pass
  optimizer    gradient clipping, the gradients' check, the update, zeroing
  bookkeeping  learning-rate schedule, progress bar, logs

with samples/s. Unlike ``scripts/profile_model.py`` (random inputs of a fixed size), this is
the step a real run takes: the data, its expression lengths, mixed precision and the optimizer
groups of the config. On CUDA every phase is synchronised before its clock is read (a little
slower than training, but each phase then holds its own kernels).

    python scripts/profile_training.py --config configs/synthetic.yaml --steps 30
    python scripts/profile_training.py --config configs/rrsisd.yaml \\
        --set data.root=DIR --json r.json
    accelerate launch --num_processes 8 scripts/profile_training.py --config ...  # main process
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from btdnet.cli_options import add_threads_option
from btdnet.engine.cli import LIBRARY_ERRORS, add_overrides_argument, build_trainer
from btdnet.engine.config import load_config
from btdnet.errors import one_line
from btdnet.safe_write import check_output_path, write_text_atomic

# task name -> the task's ``from_config`` (the tasks live above this package: the caller brings
# them, as scripts/profile_training.py does with the referring and the closed-set task).
TaskFactories = Mapping[str, Callable[..., Any]]


def parse_args(argv: list[str] | None, tasks: TaskFactories) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, required=True, help="YAML config (see configs/)")
    add_overrides_argument(parser, "override a config value, e.g. --set train.batch_size=8")
    parser.add_argument(
        "--task",
        choices=sorted(tasks),
        default="referring",
        help="referring: BTDNet (train_rrsis.py); seg: BiCoR-Seg (train_seg.py)",
    )
    parser.add_argument("--steps", type=int, default=20, help="timed updates (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first updates (default 3)")
    add_threads_option(parser)
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return args


def profile(args: argparse.Namespace, task_factory: Callable[..., Any]) -> dict[str, Any]:
    """Run the timed steps; return the report (``phases_ms``, ``step_ms``, ``samples_per_s``;
    ``samples_per_s`` counts every process's samples)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config, args.overrides)
    total = args.warmup + args.steps
    train = config.setdefault("train", {})
    train.update(stop_after_steps=total, trackers="none", log_every=0, checkpoint_every_steps=0)
    # Every epoch holds at least one update, so `total` epochs always reach `total` updates;
    # no evaluation is due before the last of them (the run stops first).
    train.update(epochs=max(int(train.get("epochs", 1)), total), eval_every=total + 1)
    with tempfile.TemporaryDirectory(prefix="profile_training_") as out:
        config["output_dir"] = out
        trainer = build_trainer(
            task_factory,
            config,
            args.config,
            out,
            show_progress=False,
            time_phases=True,
        )
        summary = trainer.fit()
    timer, settings, acc = trainer.phase_timer, trainer.settings, trainer.accelerator
    assert timer is not None
    timed = len(timer.steps) - args.warmup
    if timed < 1:  # not expected: the epochs above always hold enough updates
        raise RuntimeError(f"{args.config}: {summary.global_step} updates ran, none timed")
    medians = timer.medians(skip=args.warmup)
    step = medians.pop("step")
    samples = settings.batch_size * settings.grad_accum * acc.num_processes
    return {
        "config": str(args.config),
        "overrides": list(args.overrides),
        "device": str(acc.device),
        "threads": torch.get_num_threads(),
        "processes": acc.num_processes,
        "is_main_process": acc.is_main_process,
        "batch_size": settings.batch_size,
        "grad_accum": settings.grad_accum,
        "mixed_precision": acc.mixed_precision,  # resolved ("auto" -> what runs)
        "timed_steps": timed,
        "warmup_steps": args.warmup,
        "phases_ms": {name: seconds * 1e3 for name, seconds in medians.items()},
        "step_ms": step * 1e3,
        "samples_per_s": samples / step if step > 0 else float("inf"),
    }


def format_report(report: dict[str, Any]) -> str:
    step = report["step_ms"]
    lines = [
        f"{report['config']} {' '.join(report['overrides'])}".rstrip(),
        f"device {report['device']} ({report['threads']} threads, {report['processes']} "
        f"process(es)), batch {report['batch_size']} x accumulation {report['grad_accum']}, "
        f"mixed precision {report['mixed_precision']}",
        f"medians over {report['timed_steps']} updates after {report['warmup_steps']} of warm-up:",
    ]
    for name, ms in report["phases_ms"].items():
        share = 100 * ms / step if step > 0 else 0.0
        lines.append(f"  {name:<12} {ms:9.1f} ms  {share:5.1f}%")
    lines.append(f"  {'step':<12} {step:9.1f} ms  ({report['samples_per_s']:.1f} samples/s)")
    lines.append("(a step's median is not the sum of its phases' medians)")
    return "\n".join(lines)


def main(argv: list[str] | None = None, tasks: TaskFactories | None = None) -> int:
    """The command; ``tasks`` defaults to the referring task alone."""
    if tasks is None:
        from btdnet.task import ReferringTask

        tasks = {"referring": ReferringTask.from_config}
    args = parse_args(argv, tasks)
    try:
        if args.json is not None:  # refused before the run, not after it
            check_output_path(args.json)
        report = profile(args, tasks[args.task])
        if not report["is_main_process"]:
            return 0
        print(format_report(report))
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    except LIBRARY_ERRORS as error:
        print(f"profile_training.py: {one_line(error, first=True)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
