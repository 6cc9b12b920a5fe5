"""The contract between the generic trainer and a task (referring or closed-set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from torch import Tensor, nn
from torch.utils.data import Dataset


class TrainingTask(Protocol):
    """What the trainer needs from a task; see docs/architecture.md.

    A task is built from a config once (its own typed sections, e.g.
    ``ReferringTask.from_config(config)``) and keeps nothing else between calls.
    """

    name: str
    best_metric: str  # higher is better
    config_sections: tuple[str, ...]  # the top-level config keys the task reads

    def prepare_data(self, *, show_progress: bool = True) -> None:
        """Write generated data first when the config asks for it (local rank 0 only);
        ``show_progress``: the writer's progress bar, if it has one (``--no-progress``)."""
        ...

    def build_model(self) -> nn.Module: ...

    def build_datasets(self, model: nn.Module) -> tuple[Dataset, dict[str, Dataset]]:
        """Train set and ``{split: eval set}``; ``model`` gives what the data needs of it."""
        ...

    def compute_loss(self, model: nn.Module, batch: dict) -> tuple[Tensor, dict[str, Tensor]]: ...

    def evaluate(self, model: nn.Module, dataloader: Any, accelerator: Any) -> dict[str, Any]: ...

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict]: ...

    def save_model(self, model: nn.Module, directory: Path) -> None: ...

    def load_weights(self, model: nn.Module, directory: Path) -> None:
        """Load what ``save_model`` wrote into the built ``model`` (resume); all must fit."""
        ...
