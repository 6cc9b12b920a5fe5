"""The contract between the generic trainer and a task (referring or closed-set)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from torch import Tensor, nn
from torch.utils.data import Dataset


class TrainingTask(Protocol):
    """What the trainer needs from a task; see docs/architecture.md."""

    name: str
    best_metric: str  # higher is better

    def build_model(self, config: dict) -> nn.Module: ...

    def build_datasets(self, config: dict) -> tuple[Dataset, dict[str, Dataset]]: ...

    def collate_fn(self) -> Callable | None: ...

    def compute_loss(self, model: nn.Module, batch: dict) -> tuple[Tensor, dict[str, Tensor]]: ...

    def evaluate(self, model: nn.Module, dataloader: Any, accelerator: Any) -> dict[str, Any]: ...

    def param_groups(self, model: nn.Module, config: dict) -> list[dict]: ...

    def save_model(self, model: nn.Module, directory: Path) -> None: ...

    def load_weights(self, model: nn.Module, directory: Path) -> None:
        """Load what ``save_model`` wrote into the built ``model`` (resume); all must fit."""
        ...
