"""The referring-segmentation task for the generic trainer (``scripts/train_rrsis.py``).

Its config sections, each read once into a frozen dataclass (unknown keys are refused)::

    model: {variant, pretrained, text_lr_factor, overrides: {...BTDNetConfig fields}}
    data:  {dataset: rrsisd | refsegrs | grefs, root, train_split, eval_splits, image_size,
            max_tokens, negatives (share of added no-target samples, 0 = off),
            generate_synthetic: {train, val, test, size, seed,      # optional; grefs also
                                 multi_target_share, no_target_share}}
    eval:  {protocol: lavt | original}
    train: {...}                                                   # the engine's TrainSettings
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torch.utils.data import Dataset

from btdnet.data import build_referring_dataset
from btdnet.data.synthetic import generate_synthetic_grefs, generate_synthetic_rrsisd
from btdnet.engine.config import ConfigError
from btdnet.engine.prepare import prepare_on_local_main
from btdnet.engine.sections import (
    agreed_image_size,
    build_section,
    check_choice,
    refuse_unknown_keys,
)
from btdnet.evaluation import PROTOCOLS, evaluate_referring
from btdnet.models import VARIANTS, BTDNetConfig, build_model, load_weights, variant_config
from btdnet.registry import REFERRING_DATASETS


def _generator_keys(generator: Any) -> tuple[str, ...]:
    """The keyword options of a synthetic-set generator (what ``generate_synthetic`` may set)."""
    parameters = inspect.signature(generator).parameters.items()
    return tuple(
        n
        for n, p in parameters
        if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "show_progress"
    )


@dataclass(frozen=True)
class ReferringModelSection:
    """``model:`` the BTDNet variant and the ``BTDNetConfig`` fields it overrides."""

    variant: str
    pretrained: bool = True
    text_lr_factor: float = 1.0
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice(self.variant, sorted(VARIANTS), "model.variant")
        refuse_unknown_keys(self.overrides, BTDNetConfig.field_names(), "model.overrides")


@dataclass(frozen=True)
class ReferringDataSection:
    """``data:`` which referring data set, where, which splits, at which sizes."""

    dataset: str = "rrsisd"
    root: str | None = None
    train_split: str = "train"
    eval_splits: tuple[str, ...] = ("val",)
    image_size: int | None = None  # None: the variant's
    max_tokens: int | None = None  # None: the variant's
    negatives: float = 0.0  # share of added no-target samples (generalized referring)
    generate_synthetic: dict[str, Any] | None = None  # write the synthetic set first

    def __post_init__(self) -> None:
        check_choice(self.dataset, sorted(REFERRING_DATASETS), "data.dataset")
        if self.generate_synthetic is not None:
            keys = _generator_keys(self.generator())
            refuse_unknown_keys(self.generate_synthetic, keys, "data.generate_synthetic")

    def generator(self) -> Any:
        """The synthetic-set writer of this data set (gRefCOCO format for ``grefs``)."""
        return generate_synthetic_grefs if self.dataset == "grefs" else generate_synthetic_rrsisd

    def synthetic_marker(self) -> Path:
        """The file the generator writes last (its presence means the set is complete)."""
        root = Path(str(self.root))
        return root / ("instances.json" if self.dataset == "grefs" else "rrsisd/instances.json")


@dataclass(frozen=True)
class ReferringEvalSection:
    """``eval:`` the scoring protocol of training-time evaluation (docs/evaluation.md)."""

    protocol: str = "lavt"

    def __post_init__(self) -> None:
        check_choice(self.protocol, PROTOCOLS, "eval.protocol")


@dataclass(frozen=True)
class ReferringConfig:
    """The task's sections of a training config."""

    model: ReferringModelSection
    data: ReferringDataSection = field(default_factory=ReferringDataSection)
    eval: ReferringEvalSection = field(default_factory=ReferringEvalSection)
    seed: int = 0  # the run's top-level seed (draws the added no-target samples)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ReferringConfig:
        """Read the ``model``, ``data`` and ``eval`` sections; ``ConfigError`` names a bad key."""
        return cls(
            model=build_section(ReferringModelSection, config.get("model"), "model"),
            data=build_section(ReferringDataSection, config.get("data"), "data"),
            eval=build_section(ReferringEvalSection, config.get("eval"), "eval"),
            seed=int(config.get("seed") or 0),
        )

    def __post_init__(self) -> None:
        self.image_size()  # refuse a model and a data section that disagree

    def image_size(self) -> int | None:
        """The input size (``data.image_size``, else ``model.overrides.image_size``; None: the
        variant's); ``ConfigError`` when both are set and differ."""
        return agreed_image_size(self.model.overrides, self.data.image_size, "data.image_size")

    def model_overrides(self) -> dict[str, Any]:
        """The keyword overrides ``build_model`` gets: the model section's plus data sizes."""
        overrides = dict(self.model.overrides)
        if self.image_size() is not None:
            overrides["image_size"] = self.image_size()
        if self.data.max_tokens is not None:
            overrides["max_tokens"] = self.data.max_tokens
        return overrides


class ReferringTask:
    """BTDNet on RRSIS-D, RefSegRS or gRefCOCO-format data, scored by oIoU (gIoU when the model
    has a presence head: generalized referring, where oIoU ignores the no-target samples)."""

    name = "referring"
    config_sections = ("model", "data", "eval")

    def __init__(self, config: ReferringConfig) -> None:
        self.config = config
        section = config.model
        model_config = variant_config(section.variant, **config.model_overrides())
        self.best_metric = "gIoU" if model_config.use_presence else "oIoU"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ReferringTask:
        return cls(ReferringConfig.from_config(config))

    def build_model(self) -> nn.Module:
        section = self.config.model
        return build_model(
            section.variant, pretrained=section.pretrained, **self.config.model_overrides()
        )

    def build_datasets(self, model: nn.Module) -> tuple[Dataset, dict[str, Dataset]]:
        """Train and eval sets, tokenized with ``model``'s tokenizer at its sizes."""
        data = self.config.data
        if data.root is None:
            raise ConfigError("data.root: not set; set it in the file or with --set data.root=")

        def load(split: str) -> Dataset:
            return build_referring_dataset(
                data.dataset,
                data.root,
                split,
                model.tokenizer,
                image_size=int(model.config.image_size),
                max_tokens=int(model.config.max_tokens),
                negatives=data.negatives,
                negatives_seed=self.config.seed,
            )

        return load(data.train_split), {split: load(split) for split in data.eval_splits}

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
        protocol = self.config.eval.protocol
        dataset = dataloader.dataset if protocol == "original" else None
        return evaluate_referring(
            model, dataloader, accelerator, protocol=protocol, dataset=dataset, show_progress=False
        )

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
        return model.param_groups(
            weight_decay=weight_decay, text_lr_factor=self.config.model.text_lr_factor, lr=lr
        )

    def save_model(self, model: nn.Module, directory: Path) -> None:
        model.save_pretrained(directory)

    def load_weights(self, model: nn.Module, directory: Path) -> None:
        load_weights(model, directory)

    def prepare_data(self, *, show_progress: bool = True) -> None:
        """Write the synthetic set first when the config asks for it and it is not there yet.

        ``data.dataset: grefs`` writes the generalized set (gRefCOCO format, multi-target and
        no-target expressions), otherwise the RRSIS-D-format set. Local rank 0 writes (with a
        progress bar unless ``show_progress`` is false); the others wait for the generator's
        ``instances.json`` (written last).
        """
        data = self.config.data
        spec = data.generate_synthetic
        if not spec or data.root is None:
            return
        generate, root = data.generator(), data.root
        prepare_on_local_main(
            data.synthetic_marker(), lambda: generate(root, **spec, show_progress=show_progress)
        )
