"""The referring-segmentation task for the generic trainer (``scripts/train_rrsis.py``).

Config sections it reads::

    model: {variant, pretrained, overrides: {...}}
    data:  {dataset, root, train_split, eval_splits, image_size, max_tokens,
            negatives (share of added no-target samples, 0 = off),
            generate_synthetic: {train, val, test, size, seed}}   # optional
    train: {lr, weight_decay, text_lr_factor, ...}                 # see TrainSettings
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torch.utils.data import Dataset

from btdnet.data import build_referring_dataset
from btdnet.engine.config import get
from btdnet.engine.prepare import prepare_on_local_main
from btdnet.evaluation import evaluate_referring
from btdnet.models import build_model, load_weights


def model_overrides(config: dict) -> dict[str, Any]:
    """The keyword overrides ``build_model`` gets: the model section's plus data sizes."""
    overrides = dict(get(config, "model.overrides", {}) or {})
    image_size = get(config, "data.image_size")
    if image_size is not None:
        overrides["image_size"] = int(image_size)
    max_tokens = get(config, "data.max_tokens")
    if max_tokens is not None:
        overrides["max_tokens"] = int(max_tokens)
    return overrides


class ReferringTask:
    """BTDNet on RRSIS-D, RefSegRS or gRefCOCO-format data, scored by oIoU (gIoU when the model
    has a presence head: generalized referring, where oIoU ignores the no-target samples)."""

    name = "referring"
    best_metric = "oIoU"

    def __init__(self) -> None:
        self.tokenizer: Any = None
        self.image_size: int = 480
        self.max_tokens: int = 20

    def build_model(self, config: dict) -> nn.Module:
        variant = get(config, "model.variant", "small")
        pretrained = bool(get(config, "model.pretrained", True))
        model = build_model(variant, pretrained=pretrained, **model_overrides(config))
        if model.config.use_presence:
            self.best_metric = "gIoU"
        self.tokenizer = model.tokenizer
        self.image_size = int(model.config.image_size)
        self.max_tokens = int(model.config.max_tokens)
        return model

    def _dataset(self, config: dict, split: str) -> Dataset:
        return build_referring_dataset(
            get(config, "data.dataset", "rrsisd"),
            get(config, "data.root"),
            split,
            self.tokenizer,
            image_size=self.image_size,
            max_tokens=self.max_tokens,
            negatives=float(get(config, "data.negatives", 0.0) or 0.0),
            negatives_seed=int(get(config, "seed", 0) or 0),
        )

    def build_datasets(self, config: dict) -> tuple[Dataset, dict[str, Dataset]]:
        if get(config, "data.root") is None:
            raise ValueError("config has no data.root: set it in the file or with --set data.root=")
        train = self._dataset(config, get(config, "data.train_split", "train"))
        splits = get(config, "data.eval_splits", ["val"]) or []
        return train, {split: self._dataset(config, split) for split in splits}

    def collate_fn(self) -> None:
        return None  # torch's default_collate: tensors stacked, strings listed

    def compute_loss(self, model: nn.Module, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        out = model(
            batch["pixel_values"],
            batch["input_ids"],
            batch["attention_mask"],
            targets=batch["mask"],
            present=batch.get("present"),
        )
        return out.loss, {k: v.detach() for k, v in out.losses.items()}

    def evaluate(self, model: nn.Module, dataloader: Any, accelerator: Any) -> dict[str, Any]:
        return evaluate_referring(model, dataloader, accelerator, show_progress=False)

    def param_groups(self, model: nn.Module, config: dict) -> list[dict]:
        lr = float(get(config, "train.lr", 3e-5))
        return model.param_groups(
            weight_decay=float(get(config, "train.weight_decay", 0.01)),
            text_lr_factor=float(get(config, "model.text_lr_factor", 1.0)),
            lr=lr,
        )

    def save_model(self, model: nn.Module, directory: Path) -> None:
        model.save_pretrained(directory)

    def load_weights(self, model: nn.Module, directory: Path) -> None:
        load_weights(model, directory)


def prepare_data(config: dict) -> None:
    """Write the synthetic set first when the config asks for it and it is not there yet.

    ``data.dataset: grefs`` writes the generalized set (gRefCOCO format, multi-target and
    no-target expressions; ``generate_synthetic`` may hold ``multi_target_share`` and
    ``no_target_share``), otherwise the RRSIS-D-format set. Local rank 0 writes; the others
    wait for the generator's ``instances.json`` (written last).
    """
    spec = get(config, "data.generate_synthetic")
    root = get(config, "data.root")
    if not spec or root is None:
        return
    from btdnet.data.synthetic import generate_synthetic_grefs, generate_synthetic_rrsisd

    generalized = get(config, "data.dataset", "rrsisd") == "grefs"
    generate = generate_synthetic_grefs if generalized else generate_synthetic_rrsisd
    marker = Path(root) / ("instances.json" if generalized else "rrsisd/instances.json")
    prepare_on_local_main(marker, lambda: generate(root, **spec))
