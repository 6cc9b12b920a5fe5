"""Diagnosis over training: the same measures at every checkpoint a run kept.

A run trained with ``train.checkpoint_every_steps`` (and ``train.keep_checkpoints`` large
enough to keep them) leaves one model folder per save under ``<run>/checkpoints/``. Each is
diagnosed by :func:`btdnet.ablation.diagnosis.diagnose` on the same batches; the rows say, per
global step, whether BSC's maps come to point at the referred object (each stage's area-matched
IoU beside what a map that ignores the target scores) and what the two streams learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from btdnet.engine.checkpoints import checkpoint_step, complete_checkpoints
from btdnet.errors import CheckpointError
from btdnet.safe_write import atomic_output


def run_checkpoints(run: Path) -> list[tuple[int, Path]]:
    """``(global step, folder)`` of every complete checkpoint of a training run, oldest first.

    ``run`` is a run folder (holding ``checkpoints/``) or the ``checkpoints/`` folder itself.
    Raises :class:`CheckpointError` naming ``run`` when it holds none.
    """
    for folder in (run / "checkpoints", run):
        found = complete_checkpoints(folder)
        if found:
            return [(checkpoint_step(path), path) for path in found]
    raise CheckpointError(f"{run}: no complete checkpoint (looked in checkpoints/ and the folder)")


def over_training(
    checkpoints: Sequence[tuple[int, Path]],
    diagnose_one: Callable[[Path], dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per checkpoint: ``{"step", "checkpoint", **diagnose_one(folder)}`` (no examples)."""
    rows = []
    for step, folder in checkpoints:
        found = dict(diagnose_one(folder))
        found.pop("examples", None)
        rows.append({"step": step, "checkpoint": folder.name, **found})
    return rows


def draw_curves(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Two panels over the global step: each stage's map IoU (dashed: chance), and the IoU with
    the truth of the target stream's answer and of what the background stream calls
    not-background (its IoU with ``1 - truth`` is near 1 whatever it learns: the background is
    most of every image)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row["step"] for row in rows]
    stages = max((len(row["map_iou"]) for row in rows), default=0)
    figure, (maps, streams) = plt.subplots(1, 2, figsize=(10, 3.6))
    for stage in range(stages):
        values = [_percent(row["map_iou"], stage) for row in rows]
        scored = rows[-1].get("map_samples", [])
        label = f"stage {stage + 1}" + (
            f" ({scored[stage]} samples)" if stage < len(scored) else ""
        )
        line = maps.plot(steps, values, marker="o", label=label)[0]
        chance = [_percent(row.get("map_chance", []), stage) for row in rows]
        maps.plot(steps, chance, linestyle="--", color=line.get_color(), alpha=0.6)
    maps.set_title("BSC map IoU with the truth (dashed: a map that ignores it)", fontsize=9)
    streams.plot(steps, [_percent([r["target_iou"]], 0) for r in rows], marker="o", label="target")
    streams.plot(
        steps,
        [_percent([r.get("background_complement_iou")], 0) for r in rows],
        marker="o",
        label="background stream's not-background",
    )
    streams.set_title("IoU with the truth of each stream's answer", fontsize=9)
    for axis in (maps, streams):
        axis.set_xlabel("training step")
        axis.set_ylabel("IoU (%)")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7)
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=90, format="png")
    plt.close(figure)
    return Path(path)


def _percent(values: Sequence[float | None], index: int) -> float:
    """``100 * values[index]``; NaN (a gap in the curve) when missing."""
    if index >= len(values) or values[index] is None:
        return float("nan")
    return 100.0 * float(values[index])


__all__ = ["draw_curves", "over_training", "run_checkpoints"]
