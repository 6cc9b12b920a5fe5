"""``BTDNetConfig``: every number and switch of a BTDNet, saved beside each checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from btdnet.presence import DEFAULT_PRESENCE_THRESHOLD

# The allowed values of the three reading switches (docs/method.md, "Readings tried").
# The modules that implement them read these, so a value is named in one place.
BSC_READINGS = ("gated", "language_first", "from_baseline")
ALIGNMENT_KINDS = ("bce", "spatial")
DMOLS_RECONSTRUCTIONS = ("inputs", "features")
TWIN_READINGS = ("joint", "auxiliary")

# What a saved config that lacks a field was trained with, where that differs from today's
# default: ``alignment_kind`` became ``"spatial"`` by default on 2026-12-03 (the ablation,
# docs/ablation.md: +6.6 and +4.5 oIoU over ``"bce"`` in two regimes, beyond the seed
# spread); configs saved before the field existed were trained with the per-pixel BCE.
LEGACY_VALUES: dict[str, Any] = {"alignment_kind": "bce"}

# Switches that change what the model is trained towards but no tensor of it: a checkpoint
# resumed under other values would load and silently train differently (``load_weights``).
OBJECTIVE_READINGS = ("bsc_reading", "alignment_kind", "dmols_reconstruct", "twin_reading")


def _json_form(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_form(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_form(v) for v in value]
    return value


@dataclass
class BTDNetConfig:
    """Configuration of a BTDNet. Named variants live in ``btdnet.models.variants``.

    Encoders:
        image_encoder: timm model name (Swin by default; any four-stage timm backbone whose
            feature extractor runs stage by stage).
        image_size: square input size, a multiple of 32.
        image_encoder_kwargs: extra ``timm.create_model`` arguments (embed_dim, depths,
            num_heads, window_size, drop_path_rate, ...).
        image_pretrained: local Swin/timm weight file loaded when ``pretrained=True``, or None.
        text_encoder: text encoder name or local folder for ``AutoModel``/``AutoTokenizer``
            (None: the offline MiniLM; "bert-base": bert-base-uncased).
        text_config: architecture of the text encoder (``model_type`` + config fields), used to
            build it without files when ``pretrained=False`` and when loading our checkpoints.
        max_tokens: expression length in tokens (padding/truncation, for data and predictors).
        mask_token_id: the tokenizer's [MASK] id, used by D-MOLS word masking.

    Modules (each switchable for ablations):
        fusion_dim: BSC correlation width.
        decoder_dim: T-BTD stream width.
        use_bsc: bidirectional spatial correlation; off = one-way pixel-word fusion.
        use_twin_stream: target + background streams; off = target stream only.
        use_dmols: D-MOLS auxiliary heads (training only).
        use_alignment_loss: supervise BSC's correlation maps (needs ``use_bsc``; ignored without).
        bsc_reading: ``"gated"`` (the correlation map gates the language injection, words are
            refined after it) or ``"language_first"`` (words refined first, then injected; the
            map is supervised but gates nothing) or ``"from_baseline"`` (the gated reading with
            both of its additions over one-way fusion, the map's gating and the word update,
            scaled by learnable gates that start at zero: the model starts as the LAVT-style
            baseline and learns how much of the bidirectional path to use):
            ``btdnet/models/bsc.py``.
        twin_reading: ``"joint"`` (the answer is the target-minus-background logit) or
            ``"auxiliary"`` (the answer is the target stream alone; the background stream is
            trained by its own loss and still exchanges features with the target stream).
        alignment_kind: ``"spatial"`` (default: KL divergence of the map's softmax over pixels
            from the mask's normalised area: where the sentence points, whatever the level) or
            ``"bce"`` (each map against the down-sampled mask, pixel by pixel: our first
            reading, and what configs saved without this field were trained with).
        dmols_reconstruct: ``"inputs"`` (D-MOLS predicts the pixels of masked cells and the ids
            of masked words) or ``"features"`` (it predicts the clean, detached features of both:
            the decoder's stride-8 lateral map and the text encoder's word features).
        use_presence: the presence head of generalized referring (no-target expressions); off =
            every expression is answered "present" (the paper's model). Off by default, so
            checkpoints written before the head existed load unchanged.
        presence_threshold: ``sigmoid(presence) < threshold`` answers "no target" (empty mask).

    Losses:
        ce_class_weights: (background, target) weights of the joint cross-entropy.
        dice_weight, target_stream_weight, background_weight, agreement_weight,
        alignment_weight, dmols_visual_weight, dmols_language_weight: term weights.
        presence_weight: weight of the presence BCE (only with ``use_presence``); 0.1 since
            2026-12-03: on the generalized demo 0.1 / 0.3 / 1.0 / 3.0 gave gIoU 58.9 / 57.1 /
            52.9 / 46.9 (a heavier presence term takes the shared features from grounding).
        dmols_region_mask_ratio / dmols_context_mask_ratio: visual masking rates in and around /
            away from the target; dmols_word_mask_ratio: word masking rate.
    """

    variant: str = "custom"
    image_encoder: str = "swin_base_patch4_window12_384"
    image_size: int = 480
    image_encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    image_pretrained: str | None = None
    text_encoder: str | None = None
    text_config: dict[str, Any] | None = None
    max_tokens: int = 20
    mask_token_id: int = 103
    fusion_dim: int = 128
    decoder_dim: int = 64
    use_bsc: bool = True
    use_twin_stream: bool = True
    use_dmols: bool = True
    use_alignment_loss: bool = True
    bsc_reading: str = "gated"
    twin_reading: str = "joint"
    alignment_kind: str = "spatial"
    dmols_reconstruct: str = "inputs"
    use_presence: bool = False
    presence_threshold: float = DEFAULT_PRESENCE_THRESHOLD
    ce_class_weights: tuple[float, float] = (0.9, 1.1)
    dice_weight: float = 0.1
    target_stream_weight: float = 0.5
    background_weight: float = 0.5
    agreement_weight: float = 0.1
    alignment_weight: float = 0.1
    dmols_visual_weight: float = 0.1
    dmols_language_weight: float = 0.1
    presence_weight: float = 0.1
    dmols_region_mask_ratio: float = 0.5
    dmols_context_mask_ratio: float = 0.1
    dmols_word_mask_ratio: float = 0.15

    def __post_init__(self) -> None:
        self.ce_class_weights = tuple(float(w) for w in self.ce_class_weights)  # type: ignore[assignment]
        # JSON form (tuples -> lists), so that a config equals itself after save and load.
        self.image_encoder_kwargs = _json_form(dict(self.image_encoder_kwargs))
        if self.text_config is not None:
            self.text_config = _json_form(dict(self.text_config))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if self.image_size <= 0 or self.image_size % 32 != 0:
            raise ValueError(f"image_size must be a positive multiple of 32, got {self.image_size}")
        for name in ("max_tokens", "fusion_dim", "decoder_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name, allowed in (
            ("bsc_reading", BSC_READINGS),
            ("alignment_kind", ALIGNMENT_KINDS),
            ("dmols_reconstruct", DMOLS_RECONSTRUCTIONS),
            ("twin_reading", TWIN_READINGS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if len(self.ce_class_weights) != 2:
            raise ValueError(f"ce_class_weights needs 2 values, got {self.ce_class_weights}")
        weights = [f.name for f in dataclasses.fields(self) if f.name.endswith("_weight")]
        for name in weights:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in (
            "dmols_region_mask_ratio",
            "dmols_context_mask_ratio",
            "dmols_word_mask_ratio",
            "presence_threshold",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["ce_class_weights"] = list(self.ce_class_weights)
        return data

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BTDNetConfig:
        """Inverse of ``to_dict``; unknown keys are an error that lists them.

        A field missing from ``data`` takes its ``LEGACY_VALUES`` value where it has one (what
        configs saved before the field existed meant), else its default.
        """
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown BTDNetConfig fields {unknown}; known: {cls.field_names()}")
        return cls(**{**LEGACY_VALUES, **data})
