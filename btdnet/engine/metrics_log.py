"""Evaluation records: always ``metrics.jsonl``, plus accelerate's trackers when present."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from btdnet.safe_write import write_text_atomic


def flatten_numbers(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested dicts of numbers to ``{"a/b": x}`` (what TensorBoard-like trackers take)."""
    flat: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_numbers(value, prefix=f"{name}/"))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int | float) and math.isfinite(float(value)):
            flat[name] = float(value)
    return flat


class MetricsLog:
    """Appends one JSON object per evaluation to ``<output_dir>/metrics.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=False) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def truncate_after(self, step: int) -> None:
        """Drop records logged after ``step`` (a resumed run repeats those evaluations)."""
        kept = [r for r in self.read() if int(r.get("step", 0)) <= step]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
