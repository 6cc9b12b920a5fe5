"""Which runs an ablation makes, where each lives, and which process runs which.

Layout under the ablation folder ``out``::

    .btdnet-ablation.json          the tool's mark, written first: this folder is its own
    data/                          the synthetic set, generated once and shared by every run
    runs/<variant>/seed-<k>/train/ the trainer's output folder (config.yaml, checkpoints, logs)
    runs/<variant>/seed-<k>/result.json   written last: the run is finished
    ablation.json / ablation.md / ablation.png   the table and chart

A run is *finished* when its ``result.json`` exists (it is never repeated), *interrupted* when
its ``train/`` holds a complete checkpoint but no result (training resumes from it), *new*
otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from btdnet.ablation.variants import AblationVariant
from btdnet.safe_write import write_text_atomic

MARK_NAME = ".btdnet-ablation.json"
TOOL = "btdnet.ablation"
RESULT_NAME = "result.json"
LAUNCHER_KEYS = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "GROUP_WORLD_SIZE",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
)
"""Environment variables of ``torchrun``/``accelerate launch`` removed from each worker, so
that its trainer runs as one independent process."""


class AblationFolderError(ValueError):
    """The ablation folder holds files this tool did not write, or runs of another config."""


@dataclass(frozen=True)
class RunSpec:
    """One training run of the ablation: a variant at a seed, in its own folder."""

    variant: AblationVariant
    seed: int
    directory: Path

    @property
    def train_dir(self) -> Path:
        return self.directory / "train"

    @property
    def result_path(self) -> Path:
        return self.directory / RESULT_NAME

    @property
    def overrides(self) -> tuple[str, ...]:
        """The variant's ``--set`` overrides plus the seed."""
        return (*self.variant.overrides, f"seed={self.seed}")

    @property
    def label(self) -> str:
        return f"{self.variant.name} seed {self.seed}"


def plan_runs(
    out: Path, variants: Sequence[AblationVariant], seeds: Sequence[int], *, order: str = "seed"
) -> list[RunSpec]:
    """Every (variant, seed) run, ordered seed by seed (``order="seed"``: every variant gets
    its first seed before any gets a second) or variant by variant (``order="variant"``)."""
    if order not in ("seed", "variant"):
        raise ValueError(f"order must be 'seed' or 'variant', got {order!r}")
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    pairs = (
        [(v, s) for s in seeds for v in variants]
        if order == "seed"
        else [(v, s) for v in variants for s in seeds]
    )
    return [RunSpec(v, s, out / "runs" / v.name / f"seed-{s}") for v, s in pairs]


def run_state(spec: RunSpec) -> str:
    """``finished``, ``interrupted`` (a complete checkpoint, no result) or ``new``."""
    if spec.result_path.is_file():
        return "finished"
    checkpoints = spec.train_dir / "checkpoints"
    if checkpoints.is_dir() and any(
        (p / "training_state" / "COMPLETE").is_file() for p in checkpoints.iterdir()
    ):
        return "interrupted"
    return "new"


def read_result(path: Path) -> dict[str, Any]:
    """A run's ``result.json``; :class:`AblationFolderError` names a file that is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AblationFolderError(f"{path}: unreadable run result ({error})") from error
    if not isinstance(data, dict) or "variant" not in data or "seed" not in data:
        raise AblationFolderError(f"{path}: not a run result of {TOOL}")
    return data


def claim_folder(out: Path, config: Mapping[str, Any]) -> None:
    """Mark ``out`` as this tool's, recording the runs' base ``config`` (when not marked yet);
    refuse a non-empty folder that carries no such mark."""
    if out.exists() and not out.is_dir():
        raise AblationFolderError(f"{out}: exists and is not a folder")
    mark = out / MARK_NAME
    if out.is_dir() and any(out.iterdir()) and not mark.is_file():
        raise AblationFolderError(
            f"{out}: not empty and not an ablation folder (no {MARK_NAME}); choose an empty "
            "or new folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    if not mark.is_file():
        write_text_atomic(mark, json.dumps({"tool": TOOL, "config": dict(config)}) + "\n")


@dataclass(frozen=True)
class LaunchInfo:
    """Where this process stands in an ``accelerate launch``/``torchrun`` group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def launch_info(env: Mapping[str, str]) -> LaunchInfo:
    """Rank, world size and local rank from the launcher's variables (one process if unset)."""

    def number(key: str, default: int) -> int:
        value = env.get(key, "")
        return int(value) if value.isdigit() else default

    return LaunchInfo(number("RANK", 0), number("WORLD_SIZE", 1), number("LOCAL_RANK", 0))


def detach_from_launcher(env: MutableMapping[str, str], info: LaunchInfo, *, cuda: bool) -> None:
    """Make this process a lone worker: drop the launcher's variables from ``env`` and, with
    ``cuda``, show it only its own GPU (``CUDA_VISIBLE_DEVICES``). Call before CUDA starts."""
    for key in LAUNCHER_KEYS:
        env.pop(key, None)
    if cuda and info.world_size > 1:
        visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        env["CUDA_VISIBLE_DEVICES"] = (
            visible[info.local_rank] if info.local_rank < len(visible) else str(info.local_rank)
        )


def share_of(runs: Sequence[RunSpec], info: LaunchInfo) -> list[RunSpec]:
    """The runs of this process: whole variants dealt round-robin over the processes (process
    ``r`` of ``n`` runs variants ``r, r + n, ...`` in plan order, every seed of each)."""
    names = list(dict.fromkeys(r.variant.name for r in runs))
    mine = set(names[info.rank :: info.world_size])
    return [r for r in runs if r.variant.name in mine]
