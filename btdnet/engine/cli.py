"""The training command line shared by ``btdnet-train`` and ``bicor-train`` (``btdnet.train_cli``,
``bicor.train_cli``; ``scripts/train_rrsis.py`` and ``scripts/train_seg.py`` wrap them)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from btdnet.cli_options import add_progress_option
from btdnet.engine.config import ConfigError, load_config
from btdnet.engine.task import TrainingTask
from btdnet.engine.trainer import NonFiniteLossError, Trainer
from btdnet.errors import CheckpointError, DatasetError, one_line

EPILOG = """\
launching:
  one CPU or GPU:     {run} --config C
  N GPUs:             accelerate launch --multi_gpu --num_processes N {launch} --config C
  CPU, N processes:   accelerate launch --multi_gpu --num_processes N {launch} ... (gloo)
  several machines:   accelerate launch --num_machines M --machine_rank R \\
                        --main_process_ip IP --main_process_port P {launch} ...
No `accelerate config` file is needed. train.batch_size is per process: the total batch is
batch_size x processes x grad_accum. The output folder must be on storage every process sees.

outputs (in the output folder):
  config.yaml          the resolved config this run used
  metrics.jsonl        one JSON object per evaluation: epoch, step, split and the metrics
  checkpoints/last     the latest checkpoint (a model folder + training_state/)
  checkpoints/best     the best by the task's metric; btdnet.load_model / bicor.load_bicor load it
  events.*             TensorBoard logs when tensorboard is installed

interruptions: checkpoints are written atomically; --resume continues from checkpoints/last
with the same data order and RNG, so the run ends where an uninterrupted one would.
"""


# What the libraries raise for bad input (files, configs, data, checkpoints, divergence): the
# command reports them as one line and exits 1. Anything else is a bug and keeps its traceback.
LIBRARY_ERRORS = (
    ConfigError,
    CheckpointError,
    NonFiniteLossError,
    DatasetError,
    OSError,
    ValueError,
    MemoryError,
)


def find_run_dir(path: Path) -> Path:
    """The run folder (holding ``config.yaml``) of a run, ``checkpoints/`` or checkpoint folder."""
    for start in (path, path.resolve()):
        for folder in (start, start.parent, start.parent.parent):
            if (folder / "config.yaml").is_file():
                return folder
    raise ConfigError(
        f"{path}: no config.yaml in it or in the two folders above it; pass --config "
        "(the run's config) with --resume"
    )


def add_overrides_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``, for ``load_config``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def build_parser(prog: str, description: str, module: str | None = None) -> argparse.ArgumentParser:
    """The training options; the help's launch lines run ``prog`` (a script when it ends in
    .py, else an installed command whose ``module`` accelerate launches with -m)."""
    script = prog.endswith(".py") or module is None
    run, launch = (f"python {prog}", prog) if script else (prog, f"-m {module}")
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=EPILOG.format(run=run, launch=launch),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, help="YAML config: a file, or a shipped config's name (rrsisd.yaml)"
    )
    add_overrides_argument(
        parser,
        "override a config value, e.g. --set train.lr=1e-4 --set data.root=datasets/rrsisd",
    )
    parser.add_argument(
        "--output-dir", type=Path, help="where to write (default: the config's output_dir)"
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="resume from PATH (a run or checkpoint folder); alone: from the output folder. "
        "Without --config the run's own config.yaml is used.",
    )
    add_progress_option(parser)
    return parser


def build_trainer(
    task_factory: Callable[[dict], TrainingTask],
    config: dict,
    config_path: str | Path,
    output_dir: str | Path,
    **options: Any,
) -> Trainer:
    """The task and its Trainer (``options``: Trainer's keywords); a bad key of the config file
    or of --set is raised as a ConfigError that names ``config_path``."""
    try:
        return Trainer(task_factory(config), config, output_dir, **options)
    except ConfigError as error:  # a key of the file or of --set: name the file too
        raise ConfigError(f"{config_path}: {error}") from error


def main(
    task_factory: Callable[[dict], TrainingTask],
    *,
    prog: str,
    description: str,
    argv: list[str] | None = None,
    module: str | None = None,
) -> int:
    """Parse arguments, run the trainer, print where everything went. Returns an exit code.

    ``task_factory(config)`` builds the task from the loaded config (``Task.from_config``).
    """
    args = build_parser(prog, description, module).parse_args(argv)
    try:
        config_path, run_dir = args.config, None
        if config_path is None and args.resume is not None:
            named = Path(args.resume) if args.resume else args.output_dir
            if named is None:
                raise ConfigError("--resume without a path needs --output-dir or --config")
            run_dir = find_run_dir(named)
            config_path = run_dir / "config.yaml"
        if config_path is None:
            raise ConfigError("--config is required (or --resume RUN_DIR)")
        config = load_config(config_path, args.overrides)
        output_dir = args.output_dir or run_dir or Path(config.get("output_dir") or "runs/train")
        config["output_dir"] = str(output_dir)
        resume = None
        if args.resume is not None:
            resume = Path(args.resume) if args.resume else output_dir
        trainer = build_trainer(
            task_factory,
            config,
            config_path,
            output_dir,
            resume=resume,
            show_progress=args.progress,
        )
        summary = trainer.fit()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; resume with --resume (checkpoints are kept)", file=sys.stderr)
        return 130
    except LIBRARY_ERRORS as e:
        print(f"{prog}: error: {one_line(e, first=True)}", file=sys.stderr)
        return 1
    if summary.is_main_process:
        best = summary.best_value
        best_text = f"{best:.2f}" if best is not None else "n/a"
        print(
            f"done: {summary.epochs_done} epochs, {summary.global_step} steps in "
            f"{summary.train_seconds:.0f} s; best {summary.best_metric} {best_text}\n"
            f"  metrics:     {output_dir / 'metrics.jsonl'}\n"
            f"  checkpoints: {output_dir / 'checkpoints'} (best/, last/)"
        )
    return 0
