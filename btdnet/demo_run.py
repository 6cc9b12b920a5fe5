"""The steps both demos share (``btdnet.demo`` and ``btdnet.demo_generalized``): a run folder
and its task and trainer (:func:`prepare_demo`), then data, training and scoring, each announced
and timed (:func:`generate_train_score`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from btdnet.engine.config import load_config
from btdnet.engine.trainer import Trainer, TrainSummary
from btdnet.task import ReferringTask


class DemoRun(NamedTuple):
    """A demo's run folder and what trains in it: data in ``out_dir/data``, run in ``/train``."""

    out_dir: Path
    config: dict[str, Any]
    task: ReferringTask
    trainer: Trainer


def prepare_demo(
    out_dir: str | Path,
    config_path: str | Path,
    overrides: list[str] | tuple[str, ...],
    show_progress: bool,
) -> DemoRun:
    """Load the config (with ``overrides``), point its data and training at ``out_dir``, and
    build the task and the trainer (nothing is written yet)."""
    out_dir = Path(out_dir)
    config = load_config(config_path, overrides)
    config["output_dir"] = str(out_dir / "train")
    config.setdefault("data", {})["root"] = str(out_dir / "data")
    task = ReferringTask.from_config(config)
    trainer = Trainer(task, config, out_dir / "train", show_progress=show_progress)
    return DemoRun(out_dir, config, task, trainer)


def generate_train_score(
    run: DemoRun, score: Callable[..., dict], *, steps: tuple[str, str, str]
) -> tuple[TrainSummary, dict, dict[str, float]]:
    """Steps 1-3 of a demo, each announced (``steps``: their titles) and timed: write the
    synthetic set, train on it, score the best checkpoint with
    ``score(checkpoint, data_root, batch_size=eval batch size)``.

    Returns ``(training summary, scores, {data_seconds, train_seconds, benchmark_seconds})``.
    """
    data_step, train_step, score_step = steps
    print(f"[1/4] {data_step} -> {run.out_dir / 'data'}")
    t0 = time.perf_counter()
    run.task.prepare_data(show_progress=run.trainer.show_progress)
    timings = {"data_seconds": time.perf_counter() - t0}

    print(f"[2/4] {train_step} -> {run.out_dir / 'train'}")
    t0 = time.perf_counter()
    summary = run.trainer.fit()
    timings["train_seconds"] = time.perf_counter() - t0

    print(f"[3/4] {score_step}")
    t0 = time.perf_counter()
    checkpoint = run.out_dir / "train" / "checkpoints" / "best"
    batch = run.trainer.settings.eval_batch_size
    scores = score(checkpoint, run.config["data"]["root"], batch_size=batch)
    timings["benchmark_seconds"] = time.perf_counter() - t0
    return summary, scores, timings


__all__ = ["DemoRun", "generate_train_score", "prepare_demo"]
