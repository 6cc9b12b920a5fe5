"""BiCoR-Seg: encoder -> multi-scale fusion -> class embeddings + HBIS x L -> heads (+ losses)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from bicor.losses.criterion import BiCoRCriterion
from bicor.losses.seg_losses import SegmentationLoss
from bicor.models.class_embeddings import ClassEmbeddings
from bicor.models.fusion import MultiScaleFusion
from bicor.models.hbis import HBISLayer, HBISStack
from bicor.models.heads import SegmentationHead
from bicor.models.variants import DEFAULT_VARIANT, VARIANTS
from btdnet.models.hub import push_model_to_hub, resolve_model_source
from btdnet.models.image_encoder import ImageEncoder
from btdnet.models.serialization import (
    load_model_dir,
    load_state_strict,
    save_model_dir,
    unbuildable_checkpoint,
)

MODEL_TYPE = "bicor"
# The image encoder's fields share BTDNetConfig's names; checkpoints and overrides written with
# the earlier names still load.
LEGACY_FIELDS = {
    "encoder_name": "image_encoder",
    "img_size": "image_size",
    "encoder_kwargs": "image_encoder_kwargs",
    "encoder_weights": "image_pretrained",
}


def renamed_fields(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the encoder's old field names (``LEGACY_FIELDS``) replaced by the new."""
    data = dict(data)
    for old, new in LEGACY_FIELDS.items():
        if old in data:
            if new in data:
                raise ValueError(f"both {old!r} and its new name {new!r} are set")
            data[new] = data.pop(old)
    return data


@dataclass
class BiCoRConfig:
    """Every number of a BiCoR-Seg model (saved beside its weights as ``config.json``)."""

    num_classes: int = 6
    class_names: list[str] | None = None
    image_encoder: str = "convnext_base"
    image_size: int = 512
    image_encoder_kwargs: dict[str, Any] = field(default_factory=lambda: {"drop_path_rate": 0.5})
    image_pretrained: str | None = None
    dim: int = 256
    num_layers: int = 2
    topk_ratio: float = 1.0
    min_topk: int = 64
    use_hbis: bool = True
    use_aux_head: bool = True
    ignore_index: int = 255
    label_smoothing: float = 0.05
    dice_weight: float = 1.0
    dice_smooth: float = 0.05
    aux_weight: float = 0.4
    hier_weight: float = 0.1
    fisher_weight: float = 0.1
    final_fisher_weight: float = 0.0
    variant: str | None = None

    def __post_init__(self) -> None:
        if self.topk_ratio is None:  # configs written before the ratio became a number
            self.topk_ratio = 1.0
        if self.class_names is not None:
            self.class_names = [str(n) for n in self.class_names]
            if len(self.class_names) != self.num_classes:
                raise ValueError(
                    f"{len(self.class_names)} class names for num_classes={self.num_classes}"
                )
        if self.use_hbis and self.num_layers < 1:
            raise ValueError("num_layers must be >= 1 when use_hbis is True")
        if self.dim % 16 != 0:
            raise ValueError(
                f"dim must be a multiple of 16 (the x4 PixelShuffle head), got {self.dim}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BiCoRConfig:
        """Inverse of ``to_dict``; the encoder's old field names (``LEGACY_FIELDS``, written by
        earlier versions) are read as the new ones; unknown keys are an error that lists them."""
        data = renamed_fields(data)
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown BiCoRConfig fields: {unknown}")
        return cls(**data)


@dataclass
class BiCoROutput:
    """Output of :class:`BiCoRSeg`.

    Attributes:
        logits: (B, K, H, W) class logits at the input resolution.
        heatmaps: per HBIS layer, (B, K, H/4, W/4) heatmap logits (empty without HBIS).
        layer_embeddings: per HBIS layer, (B, K, D) class embeddings (empty without HBIS).
        aux_logits: (B, K, H, W) auxiliary logits (F0 with the detached initial embeddings) in
            training mode, else None.
        loss: scalar total loss when targets were given, else None.
        losses: every loss term and ``"total"`` (empty without targets).
    """

    logits: Tensor
    heatmaps: list[Tensor] = field(default_factory=list)
    layer_embeddings: list[Tensor] = field(default_factory=list)
    aux_logits: Tensor | None = None
    loss: Tensor | None = None
    losses: dict[str, Tensor] = field(default_factory=dict)


class BiCoRSeg(nn.Module):
    """Class-aware closed-set segmentation (method.md section 2), assembled from its parts.

    Args:
        config: the numbers (kept for saving).
        encoder: module mapping (B, 3, H, W) to four NCHW maps at strides 4/8/16/32.
        fusion: four maps -> F0 (B, D, H/4, W/4).
        class_embeddings: batch size -> (B, K, D).
        hbis: the HBIS stack, or None for the plain fused head (ablation).
        head: (F, E) -> (B, K, H, W) logits; ``head.auxiliary(F0, E0)`` the auxiliary ones
            (training only, when the head has its auxiliary classifier).
        criterion: the loss terms.
    """

    def __init__(
        self,
        *,
        config: BiCoRConfig,
        encoder: nn.Module,
        fusion: MultiScaleFusion,
        class_embeddings: ClassEmbeddings,
        hbis: HBISStack | None,
        head: SegmentationHead,
        criterion: BiCoRCriterion,
    ) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.fusion = fusion
        self.class_embeddings = class_embeddings
        self.hbis = hbis
        self.head = head
        self.criterion = criterion

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def class_names(self) -> list[str]:
        names = self.config.class_names
        return list(names) if names else [f"class_{i}" for i in range(self.num_classes)]

    def forward(self, pixel_values: Tensor, targets: Tensor | None = None) -> BiCoROutput:
        """Segment a batch.

        Args:
            pixel_values: (B, 3, H, W) normalised images.
            targets: optional (B, H, W) int64 class ids, ``ignore_index`` for unlabelled pixels.
        """
        if pixel_values.dim() != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must be (B, 3, H, W), got {tuple(pixel_values.shape)}")
        size = (pixel_values.shape[-2], pixel_values.shape[-1])
        fused = self.fusion(self.encoder(pixel_values))  # (B, D, H/4, W/4)
        initial = self.class_embeddings(pixel_values.shape[0])  # (B, K, D)
        heatmaps: list[Tensor] = []
        layer_embeddings: list[Tensor] = []
        features, embeddings = fused, initial
        if self.hbis is not None:
            features, embeddings, heatmaps, layer_embeddings = self.hbis(fused, initial)
        logits = self.head(features, embeddings, output_size=size)
        aux_logits = None
        if self.training and self.head.aux_classifier is not None:
            aux_logits = self.head.auxiliary(fused, initial, output_size=size)
        output = BiCoROutput(
            logits=logits,
            heatmaps=heatmaps,
            layer_embeddings=layer_embeddings,
            aux_logits=aux_logits,
        )
        if targets is not None:
            if targets.shape != (pixel_values.shape[0], *size):
                raise ValueError(
                    f"targets must be (B, H, W) = {(pixel_values.shape[0], *size)}, "
                    f"got {tuple(targets.shape)}"
                )
            output.losses = self.criterion(
                logits=logits,
                target=targets.long(),
                aux_logits=aux_logits,
                heatmaps=heatmaps,
                layer_embeddings=layer_embeddings,
            )
            output.loss = output.losses["total"]
        return output

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``model.safetensors`` + ``config.json`` (model_type "bicor") to ``directory``."""
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        save_model_dir(directory, state, self.config.to_dict(), MODEL_TYPE)

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        *,
        map_location: str = "cpu",
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
    ) -> BiCoRSeg:
        """Load a saved BiCoR-Seg from a folder or a Hub repo id (:func:`load_bicor`)."""
        return load_bicor(
            source, map_location=map_location, revision=revision, token=token, cache_dir=cache_dir
        )

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload ``config.json``, ``model.safetensors`` and a generated model card to the
        Hugging Face Hub; ``run_dir=`` (the training run's folder) fills the card's data,
        recipe and best metrics. Keywords: :func:`btdnet.models.hub.push_to_hub`."""
        return push_model_to_hub(self, repo_id, **kwargs)


def build_image_encoder(config: BiCoRConfig, *, pretrained: bool = False) -> ImageEncoder:
    """The shared timm image-encoder wrapper for ``config.image_encoder``.

    With ``pretrained`` the local file ``config.image_pretrained`` is loaded (no network).
    """
    weights = None
    if pretrained:
        if not config.image_pretrained:
            raise ValueError(
                "pretrained=True needs image_pretrained: a local weight file for "
                f"{config.image_encoder!r} (.safetensors/.pth); no hub is contacted"
            )
        weights = config.image_pretrained
    return ImageEncoder(
        config.image_encoder,
        config.image_size,
        pretrained_path=weights,
        **config.image_encoder_kwargs,
    )


def build_bicor_from_config(
    config: BiCoRConfig, *, pretrained: bool = False, encoder: nn.Module | None = None
) -> BiCoRSeg:
    """Assemble a :class:`BiCoRSeg`; ``encoder`` (exposing ``.channels``) replaces the timm one."""
    if encoder is None:
        encoder = build_image_encoder(config, pretrained=pretrained)
    channels = list(encoder.channels)
    dim = config.dim
    hbis = None
    if config.use_hbis:
        hbis = HBISStack(
            [
                HBISLayer(dim=dim, topk_ratio=config.topk_ratio, min_topk=config.min_topk)
                for _ in range(config.num_layers)
            ]
        )
    main_loss = SegmentationLoss(
        ignore_index=config.ignore_index,
        label_smoothing=config.label_smoothing,
        dice_weight=config.dice_weight,
        dice_smooth=config.dice_smooth,
    )
    criterion = BiCoRCriterion(
        main_loss=main_loss,
        aux_weight=config.aux_weight,
        hier_weight=config.hier_weight,
        fisher_weight=config.fisher_weight,
        final_fisher_weight=config.final_fisher_weight,
    )
    return BiCoRSeg(
        config=config,
        encoder=encoder,
        fusion=MultiScaleFusion(in_channels=channels, dim=dim),
        class_embeddings=ClassEmbeddings(num_classes=config.num_classes, dim=dim),
        hbis=hbis,
        head=SegmentationHead(dim=dim, auxiliary=config.use_aux_head and config.aux_weight > 0),
        criterion=criterion,
    )


def bicor_config(variant: str = DEFAULT_VARIANT, **overrides: Any) -> BiCoRConfig:
    """The :class:`BiCoRConfig` of a named variant with ``overrides`` applied."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown BiCoR variant {variant!r}; choose one of {sorted(VARIANTS)}")
    values = {**VARIANTS[variant], **renamed_fields(overrides), "variant": variant}
    return BiCoRConfig.from_dict(values)


def build_bicor(
    variant: str = DEFAULT_VARIANT,
    pretrained: bool = False,
    *,
    encoder: nn.Module | None = None,
    **overrides: Any,
) -> BiCoRSeg:
    """Build a BiCoR-Seg model of a named variant (see ``bicor.models.variants``).

    Args:
        variant: one of ``VARIANTS``.
        pretrained: load the encoder weights from the local file ``image_pretrained``.
        encoder: a ready encoder module (tests, custom backbones), bypassing timm.
        **overrides: any :class:`BiCoRConfig` field (``num_classes``, ``num_layers``, ...).
    """
    config = bicor_config(variant, **overrides)
    return build_bicor_from_config(config, pretrained=pretrained, encoder=encoder)


def load_bicor_weights(model: BiCoRSeg, directory: str | Path) -> BiCoRSeg:
    """Load the weights of a BiCoR-Seg folder into a built ``model`` (all must fit; in place)."""
    state, _ = load_model_dir(directory, MODEL_TYPE)
    load_state_strict(model, state, str(directory))
    return model


def load_bicor(
    directory: str | Path,
    *,
    map_location: str = "cpu",
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
) -> BiCoRSeg:
    """Load a BiCoR-Seg folder written by ``save_pretrained`` (the one way to load one), or a
    Hugging Face Hub repo id (``owner/name``, through the Hugging Face cache, with
    huggingface_hub's ``revision``, ``token`` and ``cache_dir``; see
    :func:`btdnet.models.hub.resolve_model_source`).

    Raises:
        CheckpointError: one line naming the folder: missing, not a BiCoR-Seg folder,
            unreadable, or weights that do not fit the config they came with.
    """
    directory = resolve_model_source(directory, revision=revision, token=token, cache_dir=cache_dir)
    state, config_dict = load_model_dir(directory, MODEL_TYPE)
    try:
        model = build_bicor_from_config(BiCoRConfig.from_dict(config_dict), pretrained=False)
    except Exception as error:  # a config this toolkit cannot build: one line, the folder named
        raise unbuildable_checkpoint(directory, error) from error
    load_state_strict(model, state, str(directory))
    return model.to(map_location)
