"""A tiny regression task that exercises the generic trainer without any real model."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from torch.utils.data import Dataset


class ToyData(Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i], "index": i}


class ToyModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.1), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class ToyTask:
    name = "toy"
    best_metric = "score"
    config_sections = ("data",)

    def __init__(self, nan_at_step: int | None = None, n: int = 40) -> None:
        self.nan_at_step = nan_at_step
        self.n = n
        self.calls = 0

    @classmethod
    def from_config(cls, config: dict) -> ToyTask:
        return cls(n=int((config.get("data") or {}).get("n", 40)))

    def prepare_data(self, *, show_progress: bool = True) -> None:
        pass

    def build_model(self) -> nn.Module:
        return ToyModel()

    def build_datasets(self, model):
        return ToyData(self.n, 0), {"val": ToyData(13, 1)}

    def compute_loss(self, model, batch):
        self.calls += 1
        pred = model(batch["x"])
        loss = ((pred - batch["y"]) ** 2).mean()
        if self.nan_at_step is not None and self.calls >= self.nan_at_step:
            loss = loss * float("nan")
        return loss, {"mse": loss.detach()}

    def evaluate(self, model, dataloader, accelerator):
        errors, count = [], []
        with torch.no_grad():
            for batch in dataloader:
                err = ((model(batch["x"]) - batch["y"]) ** 2).sum()
                n = torch.tensor(float(batch["x"].shape[0]), device=err.device)
                errors.append(accelerator.gather_for_metrics(err.reshape(1)).sum())
                count.append(accelerator.gather_for_metrics(n.reshape(1)).sum())
        mse = float(sum(errors) / sum(count))
        return {"score": -mse, "samples": int(sum(count))}

    def param_groups(self, model, lr, weight_decay):
        return [{"params": list(model.parameters())}]

    def save_model(self, model, directory: Path) -> None:
        save_model(model, str(Path(directory) / "model.safetensors"))
        (Path(directory) / "config.json").write_text(json.dumps({"model_type": "toy"}))

    def load_weights(self, model, directory: Path) -> None:
        load_model(model, str(Path(directory) / "model.safetensors"), strict=True)
