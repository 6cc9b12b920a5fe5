"""The closed-set segmentation task for the generic trainer (``scripts/train_seg.py``).

Config sections it reads::

    model: {variant, pretrained, encoder_lr_factor, decay_all_parameters,
            overrides: {...}}                                        # BiCoRConfig fields
    data:  {dataset: synthetic_seg | loveda | vaihingen | potsdam, root,
            train_split, eval_splits, crop_size, scales, flips, rot90,
            split_scheme, image_mode, crops_per_tile,          # real data sets
            rot90_p, smart_crop_ratio, mosaic_p, mosaic_size,  # the authors' augmentations
            image_size, generate_synthetic: {train, val, size, seed}}  # synthetic set
    eval:  {protocol: geoseg | mmseg, window, stride, window_batch,
            tta: {hflip, vflip, rot90, scales}}                    # bicor.tta
    train: {lr, weight_decay, schedule: cosine, ...}             # see TrainSettings

``num_classes`` and ``class_names`` come from the data set; ``img_size`` from the crop size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from bicor.data.augment import DEFAULT_SCALES, CropAugment
from bicor.data.builder import CLOSED_SET_DATASETS, build_closed_set_dataset
from bicor.data.synthetic_seg import CLASSES as SYNTHETIC_CLASSES
from bicor.data.synthetic_seg import SyntheticSegDataset, write_synthetic_seg
from bicor.evaluation import evaluate_closed_set
from bicor.models import BiCoRSeg, build_bicor, load_bicor_weights
from bicor.protocols import closed_set_protocol
from bicor.tta import TestTimeAugment
from btdnet.engine.config import get
from btdnet.engine.prepare import prepare_on_local_main

SYNTHETIC = "synthetic_seg"


def dataset_classes(
    dataset: str, protocol: str = "geoseg"
) -> tuple[list[str], tuple[int, ...] | None]:
    """(class names, classes entering mIoU/mF1 or None for all) of a data set and protocol."""
    if dataset == SYNTHETIC:
        return list(SYNTHETIC_CLASSES), None
    if dataset not in CLOSED_SET_DATASETS:
        raise ValueError(
            f"unknown data.dataset {dataset!r}; expected {SYNTHETIC} or one of "
            f"{CLOSED_SET_DATASETS}"
        )
    spec = closed_set_protocol(dataset, protocol)
    return list(spec.class_names), spec.eval_classes


class AugmentTransform:
    """``(image, mask) -> (image, mask)``: a :class:`CropAugment` drawing its randomness from
    torch's generator, so that seeding and resuming the trainer fixes it."""

    def __init__(self, augment: CropAugment) -> None:
        self.augment = augment

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))
        crop_image, crop_mask, _ = self.augment(image, mask, rng)
        return crop_image, crop_mask


class SegTask:
    """BiCoR-Seg on the synthetic set, LoveDA, Vaihingen or Potsdam, scored by mIoU."""

    name = "seg"
    best_metric = "mIoU"

    def __init__(self) -> None:
        self.class_names: list[str] = []
        self.eval_classes: tuple[int, ...] | None = None
        self.eval_settings: dict[str, Any] = {}

    def _dataset_name(self, config: dict) -> str:
        return str(get(config, "data.dataset", SYNTHETIC)).lower()

    def _crop_size(self, config: dict) -> int:
        if self._dataset_name(config) == SYNTHETIC:
            return int(get(config, "data.image_size", 128))
        return int(get(config, "data.crop_size", 512))

    def build_model(self, config: dict) -> nn.Module:
        dataset = self._dataset_name(config)
        self.class_names, self.eval_classes = dataset_classes(
            dataset, str(get(config, "eval.protocol", "geoseg"))
        )
        self.eval_settings = {
            "window": get(config, "eval.window"),
            "stride": get(config, "eval.stride"),
            "flip_tta": bool(get(config, "eval.flip_tta", False)),
            "tta": TestTimeAugment.from_config(get(config, "eval.tta")),
            "window_batch": int(get(config, "eval.window_batch", 4)),
        }
        overrides = dict(get(config, "model.overrides", {}) or {})
        overrides.setdefault("img_size", self._crop_size(config))
        overrides["num_classes"] = len(self.class_names)
        overrides["class_names"] = self.class_names
        return build_bicor(
            str(get(config, "model.variant", "demo")),
            pretrained=bool(get(config, "model.pretrained", False)),
            **overrides,
        )

    def _train_augment(self, config: dict) -> CropAugment:
        return CropAugment(
            self._crop_size(config),
            tuple(float(s) for s in get(config, "data.scales", DEFAULT_SCALES)),
            bool(get(config, "data.flips", True)),
            bool(get(config, "data.rot90", True)),
        )

    def _closed_set(self, config: dict, split: str, mode: str) -> Dataset:
        options: dict[str, Any] = {}
        keys = ("split_scheme", "image_mode", "crops_per_tile", "cache_dir", "domains")
        keys += ("rot90_p", "smart_crop_ratio", "mosaic_p", "mosaic_size")
        for key in keys:
            value = get(config, f"data.{key}")
            if value is not None:
                options[key] = value
        return build_closed_set_dataset(
            self._dataset_name(config),
            get(config, "data.root"),
            split,
            mode=mode,
            crop_size=self._crop_size(config),
            scales=tuple(float(s) for s in get(config, "data.scales", DEFAULT_SCALES)),
            flips=bool(get(config, "data.flips", True)),
            rot90=bool(get(config, "data.rot90", True)),
            **options,
        )

    def build_datasets(self, config: dict) -> tuple[Dataset, dict[str, Dataset]]:
        root = get(config, "data.root")
        if root is None:
            raise ValueError("config has no data.root: set it in the file or with --set data.root=")
        splits: Sequence[str] = get(config, "data.eval_splits", ["val"]) or []
        train_split = str(get(config, "data.train_split", "train"))
        if self._dataset_name(config) == SYNTHETIC:
            size = self._crop_size(config)
            train = SyntheticSegDataset(
                root,
                train_split,
                image_size=size,
                transform=AugmentTransform(self._train_augment(config)),
            )
            evals = {s: SyntheticSegDataset(root, s, image_size=size) for s in splits}
            return train, evals
        train = self._closed_set(config, train_split, "train")
        return train, {s: self._closed_set(config, s, "eval") for s in splits}

    def collate_fn(self) -> None:
        return None  # default_collate; eval tiles of varying size need eval_batch_size 1

    def compute_loss(self, model: nn.Module, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        out = model(batch["pixel_values"], targets=batch["mask"])
        return out.loss, {k: v.detach() for k, v in out.losses.items()}

    def evaluate(self, model: nn.Module, dataloader: Any, accelerator: Any) -> dict[str, Any]:
        config = accelerator.unwrap_model(model).config
        return evaluate_closed_set(
            model,
            dataloader,
            accelerator,
            class_names=config.class_names or self.class_names,
            eval_classes=self.eval_classes,
            **self.eval_settings,
        )

    def param_groups(self, model: nn.Module, config: dict) -> list[dict]:
        """AdamW groups: weight decay on every parameter (the authors' recipe) unless
        ``model.decay_all_parameters`` is false, which exempts norms, biases and the class
        embeddings; the encoder's learning rate scaled by ``model.encoder_lr_factor`` (1)."""
        lr = float(get(config, "train.lr", 1e-4))
        weight_decay = float(get(config, "train.weight_decay", 0.01))
        encoder_factor = float(get(config, "model.encoder_lr_factor", 1.0))
        decay_all = bool(get(config, "model.decay_all_parameters", True))
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = not decay_all and (param.ndim <= 1 or name.startswith("class_embeddings."))
            groups.setdefault((name.startswith("encoder."), no_decay), []).append(param)
        return [
            {
                "params": params,
                "lr": lr * (encoder_factor if is_encoder else 1.0),
                "weight_decay": 0.0 if no_decay else weight_decay,
            }
            for (is_encoder, no_decay), params in sorted(groups.items())
        ]

    def save_model(self, model: nn.Module, directory: Path) -> None:
        if not isinstance(model, BiCoRSeg):
            raise TypeError(f"expected a BiCoRSeg, got {type(model).__name__}")
        model.save_pretrained(directory)

    def load_weights(self, model: nn.Module, directory: Path) -> None:
        load_bicor_weights(model, directory)


def prepare_seg_data(config: dict) -> None:
    """Write the synthetic set first when the config asks for it and it is not there yet.

    Local rank 0 writes; the others wait for ``classes.json`` (written last).
    """
    spec = get(config, "data.generate_synthetic")
    root = get(config, "data.root")
    if not spec or root is None or str(get(config, "data.dataset", SYNTHETIC)) != SYNTHETIC:
        return
    prepare_on_local_main(Path(root) / "classes.json", lambda: write_synthetic_seg(root, **spec))
