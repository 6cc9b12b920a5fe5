"""The training curve as a picture: loss against step, and the evaluation metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from btdnet.safe_write import atomic_output


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a missing file or an unreadable line gives nothing for it."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def plot_training_curves(
    train_log: list[dict[str, Any]],
    evaluations: list[dict[str, Any]],
    out_path: str | Path,
    *,
    metric: str = "oIoU",
    title: str = "training",
) -> Path | None:
    """Draw the training loss (left axis) and the evaluations' ``metric`` (right axis).

    Args:
        train_log: records with ``step`` and ``loss`` (the trainer's ``train_log.jsonl``).
        evaluations: records with ``step``, ``split`` and ``metric`` (``metrics.jsonl``).
        out_path: the PNG to write.

    Returns:
        The PNG's path, or None when there is nothing to draw.
    """
    losses = [(r["step"], r["loss"]) for r in train_log if "step" in r and "loss" in r]
    scores: dict[str, list[tuple[int, float]]] = {}
    for record in evaluations:
        if metric in record and "step" in record:
            scores.setdefault(str(record.get("split", "eval")), []).append(
                (record["step"], record[metric])
            )
    if not losses and not scores:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, loss_axis = plt.subplots(figsize=(7.5, 3.6), dpi=110)
    if losses:
        steps, values = zip(*losses)
        loss_axis.plot(steps, values, color="#3b6fb6", linewidth=1.2, label="training loss")
    loss_axis.set_xlabel("optimizer step")
    loss_axis.set_ylabel("training loss", color="#3b6fb6")
    loss_axis.grid(alpha=0.3)
    if scores:
        metric_axis = loss_axis.twinx()
        for split, points in sorted(scores.items()):
            steps, values = zip(*points)
            metric_axis.plot(steps, values, "o-", color="#d1495b", label=f"{split} {metric}")
        metric_axis.set_ylabel(f"{metric} (%)", color="#d1495b")
        metric_axis.set_ylim(0, 100)
        metric_axis.legend(loc="lower right")
    loss_axis.set_title(title)
    figure.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out_path) as tmp:  # a link at the name is refused
        figure.savefig(tmp, format=out_path.suffix.lstrip(".") or "png")
    plt.close(figure)
    return out_path
