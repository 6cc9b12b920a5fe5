"""The closed-set segmentation task for the generic trainer (``scripts/train_seg.py``).

Its config sections, each read once into a frozen dataclass (unknown keys are refused)::

    model: {variant, pretrained, encoder_lr_factor, decay_all_parameters,
            overrides: {...BiCoRConfig fields}}
    data:  {dataset: synthetic_seg | loveda | vaihingen | potsdam, root,
            train_split, eval_splits, crop_size, scales, flips, rot90,
            split_scheme, image_mode, cache_dir, domains,                 # real data sets
            crops_per_tile: int | {patch, stride, copies},               # GeoSeg's count
            crop_mode: random | sliding | squares | whole,    # the last two: the authors' items
            rot90_p, smart_crop_ratio, mosaic_p, mosaic_size,  # the authors' augmentations
            car_oversampling: bool | {patch, stride, threshold, seed},    # GeoSeg's, ISPRS
            image_size, generate_synthetic: {train, val, size, seed}}     # synthetic set
    eval:  {protocol: geoseg | mmseg, window, stride, border: clamp | pad, flip_tta, window_batch,
            tta: {hflip, vflip, rot90, scales},                           # bicor.tta
            selection: toolkit | authors}        # the rule that picks the best checkpoint
    train: {...}                                                          # TrainSettings

``num_classes`` and ``class_names`` come from the data set; ``image_size`` from the crop size.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from bicor.data.augment import DEFAULT_SCALES, CropAugment
from bicor.data.builder import build_closed_set_dataset
from bicor.data.synthetic_seg import CLASSES as SYNTHETIC_CLASSES
from bicor.data.synthetic_seg import SyntheticSegDataset, write_synthetic_seg
from bicor.evaluation import evaluate_closed_set
from bicor.inference import BORDERS
from bicor.models import BiCoRConfig, BiCoRSeg, build_bicor, load_bicor_weights
from bicor.models.bicor_seg import LEGACY_FIELDS
from bicor.models.variants import VARIANTS
from bicor.protocols import PROTOCOL_NAMES, closed_set_protocol
from bicor.registry import SEG_DATASETS, SYNTHETIC_SEG
from bicor.tta import TestTimeAugment
from btdnet.engine.config import ConfigError
from btdnet.engine.prepare import prepare_on_local_main
from btdnet.engine.sections import (
    agreed_image_size,
    build_section,
    check_choice,
    refuse_unknown_keys,
)
from btdnet.models.param_groups import build_param_groups

SYNTHETIC = SYNTHETIC_SEG
DATASETS = SEG_DATASETS
# eval.selection: "toolkit" = the best mIoU, scored as configured (TTA included); "authors" =
# the BiCoR-Seg configs' monitor: val_F1 (mF1) on ISPRS, val_mIoU on LoveDA, scored without TTA.
SELECTIONS = ("toolkit", "authors")
AUTHORS_MONITOR = {"vaihingen": "mF1", "potsdam": "mF1"}  # every other data set: mIoU
SYNTHETIC_KEYS = tuple(inspect.signature(write_synthetic_seg).parameters)[1:]


def dataset_classes(
    dataset: str, protocol: str = "geoseg"
) -> tuple[list[str], tuple[int, ...] | None]:
    """(class names, classes entering mIoU/mF1 or None for all) of a data set and protocol."""
    if dataset == SYNTHETIC:
        return list(SYNTHETIC_CLASSES), None
    check_choice(dataset, DATASETS, "data.dataset")
    spec = closed_set_protocol(dataset, protocol)
    return list(spec.class_names), spec.eval_classes


@dataclass(frozen=True)
class SegModelSection:
    """``model:`` the BiCoR-Seg variant, the ``BiCoRConfig`` fields it overrides, lr factor."""

    variant: str
    pretrained: bool = False
    encoder_lr_factor: float = 1.0
    decay_all_parameters: bool = True  # the authors' recipe; false exempts norms, biases, E
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice(self.variant, sorted(VARIANTS), "model.variant")
        known = [*BiCoRConfig.field_names(), *LEGACY_FIELDS]
        refuse_unknown_keys(self.overrides, known, "model.overrides")


@dataclass(frozen=True)
class SegDataSection:
    """``data:`` which closed-set data set, where, which splits, crops and augmentation."""

    dataset: str = SYNTHETIC
    root: str | None = None
    train_split: str = "train"
    eval_splits: tuple[str, ...] = ("val",)
    image_size: int = 128  # the synthetic set's image (and crop) size
    crop_size: int = 512  # the real data sets' training crop
    scales: tuple[float, ...] = DEFAULT_SCALES
    flips: bool = True
    rot90: bool = True
    split_scheme: str | None = None
    image_mode: str | None = None
    crops_per_tile: int | dict[str, int] | None = None  # a mapping: GeoSeg's square count
    crop_mode: str | None = None  # random | sliding | squares | whole (squares with a mapping)
    cache_dir: str | None = None
    domains: tuple[str, ...] | None = None
    rot90_p: float | None = None
    smart_crop_ratio: float | None = None
    mosaic_p: float | None = None
    mosaic_size: int | None = None
    car_oversampling: bool | dict[str, Any] | None = None  # bicor.data.car_oversampling
    generate_synthetic: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_choice(self.dataset, DATASETS, "data.dataset")
        if self.generate_synthetic is not None:
            refuse_unknown_keys(self.generate_synthetic, SYNTHETIC_KEYS, "data.generate_synthetic")

    @property
    def crop(self) -> int:
        """The training crop (and model input) size."""
        return self.image_size if self.dataset == SYNTHETIC else self.crop_size

    def tile_options(self) -> dict[str, Any]:
        """The real-data-set options that were set (the builder's defaults for the others)."""
        names = ("split_scheme", "image_mode", "crops_per_tile", "crop_mode", "cache_dir")
        names += ("domains",)
        names += ("rot90_p", "smart_crop_ratio", "mosaic_p", "mosaic_size", "car_oversampling")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass(frozen=True)
class SegEvalSection:
    """``eval:`` the scoring protocol and the sliding window (docs/evaluation.md)."""

    protocol: str = "geoseg"
    window: int | None = None
    stride: int | None = None
    border: str = "clamp"  # or "pad": GeoSeg's test patches (bicor.inference)
    flip_tta: bool = False
    window_batch: int = 4
    tta: dict[str, Any] | None = None  # bicor.tta.TestTimeAugment: {hflip, vflip, rot90, scales}
    selection: str = "toolkit"  # or "authors": which training-time score picks "best"

    def __post_init__(self) -> None:
        check_choice(self.protocol, PROTOCOL_NAMES, "eval.protocol")
        check_choice(self.selection, SELECTIONS, "eval.selection")
        check_choice(self.border, BORDERS, "eval.border")
        for name in ("window", "stride"):  # checked now, not at the first evaluation
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"eval.{name}: must be >= 1 pixel, got {value}")
        if self.window_batch < 1:
            raise ConfigError(f"eval.window_batch: must be >= 1, got {self.window_batch}")
        if self.window and self.stride and self.stride > self.window:
            raise ConfigError(
                f"eval.stride: {self.stride} is larger than eval.window {self.window}: pixels "
                "between windows would never be predicted"
            )
        if self.tta is not None:
            refuse_unknown_keys(self.tta, ("hflip", "vflip", "rot90", "scales"), "eval.tta")


@dataclass(frozen=True)
class SegConfig:
    """The task's sections of a training config."""

    model: SegModelSection
    data: SegDataSection = field(default_factory=SegDataSection)
    eval: SegEvalSection = field(default_factory=SegEvalSection)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SegConfig:
        """Read the ``model``, ``data`` and ``eval`` sections; ``ConfigError`` names a bad key."""
        return cls(
            model=build_section(SegModelSection, config.get("model"), "model"),
            data=build_section(SegDataSection, config.get("data"), "data"),
            eval=build_section(SegEvalSection, config.get("eval"), "eval"),
        )

    def __post_init__(self) -> None:
        self.image_size()  # refuse a model and a data section that disagree

    def image_size(self) -> int:
        """The input size: the data's crop (``data.image_size`` for the synthetic set, else
        ``data.crop_size``); ``ConfigError`` when ``model.overrides`` sets another."""
        key = "data.image_size" if self.data.dataset == SYNTHETIC else "data.crop_size"
        legacy = ("image_size", "img_size")  # img_size: the old name
        return agreed_image_size(self.model.overrides, self.data.crop, key, legacy)


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
    config_sections = ("model", "data", "eval")

    def __init__(self, config: SegConfig) -> None:
        self.config = config
        self.class_names, self.eval_classes = dataset_classes(
            config.data.dataset, config.eval.protocol
        )
        if config.eval.selection == "authors":
            self.best_metric = AUTHORS_MONITOR.get(config.data.dataset, "mIoU")

    @property
    def selection_rule(self) -> str:
        """How the "best" checkpoint is chosen, written beside every training-time score."""
        splits = "+".join(self.config.data.eval_splits)
        if self.config.eval.selection == "authors":
            return f"best {self.best_metric} on {splits} without TTA (the authors' rule)"
        tta = self.config.eval.tta or ({"hflip": True} if self.config.eval.flip_tta else None)
        views = f"TTA {tta}" if tta else "no TTA"
        return f"best {self.best_metric} on {splits} with {views} (the toolkit's rule)"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SegTask:
        return cls(SegConfig.from_config(config))

    def build_model(self) -> nn.Module:
        section = self.config.model
        overrides = dict(section.overrides)
        if "image_size" not in overrides and "img_size" not in overrides:  # img_size: old name
            overrides["image_size"] = self.config.image_size()
        overrides["num_classes"] = len(self.class_names)
        overrides["class_names"] = self.class_names
        return build_bicor(section.variant, pretrained=section.pretrained, **overrides)

    def _closed_set(self, split: str, mode: str) -> Dataset:
        data = self.config.data
        return build_closed_set_dataset(
            data.dataset,
            data.root,
            split,
            mode=mode,
            crop_size=data.crop,
            scales=data.scales,
            flips=data.flips,
            rot90=data.rot90,
            **data.tile_options(),
        )

    def build_datasets(self, model: nn.Module) -> tuple[Dataset, dict[str, Dataset]]:
        data = self.config.data
        if data.root is None:
            raise ConfigError("data.root: not set; set it in the file or with --set data.root=")
        if data.dataset != SYNTHETIC:
            train = self._closed_set(data.train_split, "train")
            return train, {s: self._closed_set(s, "eval") for s in data.eval_splits}
        augment = CropAugment(data.crop, data.scales, data.flips, data.rot90)
        train = SyntheticSegDataset(
            data.root, data.train_split, image_size=data.crop, transform=AugmentTransform(augment)
        )
        evals = {
            s: SyntheticSegDataset(data.root, s, image_size=data.crop) for s in data.eval_splits
        }
        return train, evals

    def compute_loss(self, model: nn.Module, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        out = model(batch["pixel_values"], targets=batch["mask"])
        return out.loss, {k: v.detach() for k, v in out.losses.items()}

    def evaluate(self, model: nn.Module, dataloader: Any, accelerator: Any) -> dict[str, Any]:
        """Training-time scores; ``selection`` names the rule that picks the best checkpoint
        (the authors' rule scores without TTA)."""
        settings = self.config.eval
        plain = settings.selection == "authors"
        result = evaluate_closed_set(
            model,
            dataloader,
            accelerator,
            class_names=accelerator.unwrap_model(model).config.class_names or self.class_names,
            eval_classes=self.eval_classes,
            window=settings.window,
            stride=settings.stride,
            flip_tta=settings.flip_tta and not plain,
            tta=None if plain else TestTimeAugment.from_config(settings.tta),
            window_batch=settings.window_batch,
            border=settings.border,
        )
        result["selection"] = self.selection_rule
        return result

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
        """AdamW groups: weight decay on every parameter (the authors' recipe) unless
        ``model.decay_all_parameters`` is false, which exempts norms, biases and the class
        embeddings; the encoder's learning rate scaled by ``model.encoder_lr_factor``."""
        return build_param_groups(
            model,
            weight_decay=weight_decay,
            lr=lr,
            scaled_prefix="encoder.",
            lr_factor=self.config.model.encoder_lr_factor,
            no_decay_names=("class_embeddings.",),
            exempt_from_decay=not self.config.model.decay_all_parameters,
        )

    def save_model(self, model: nn.Module, directory: Path) -> None:
        if not isinstance(model, BiCoRSeg):
            raise TypeError(f"expected a BiCoRSeg, got {type(model).__name__}")
        model.save_pretrained(directory)

    def load_weights(self, model: nn.Module, directory: Path) -> None:
        load_bicor_weights(model, directory)

    def prepare_data(self, *, show_progress: bool = True) -> None:
        """Write the synthetic set first when the config asks for it and it is not there yet.

        Local rank 0 writes; the others wait for ``classes.json`` (written last). The writer
        is quick and shows no progress bar, so ``show_progress`` changes nothing here.
        """
        data = self.config.data
        spec = data.generate_synthetic
        if not spec or data.root is None or data.dataset != SYNTHETIC:
            return
        root = data.root
        prepare_on_local_main(
            Path(root) / "classes.json", lambda: write_synthetic_seg(root, **spec)
        )
