"""Named BTDNet variants (the numbers live here) and the builders.

| variant | image encoder | text encoder | size | use |
|---|---|---|---|---|
| ``paper`` | Swin-B, window 12 | bert-base-uncased | 480 | the paper's setting |
| ``small`` | Swin-T, window 7 | offline MiniLM | 480 | cheaper experiments |
| ``demo``  | Swin (32 wide, depths 1-1-2-1), window 4 | offline MiniLM | 128 | CPU demo |
| ``tiny``  | Swin (16 wide, depth 1 each), window 3 | 2-layer 32-wide BERT | 96 | tests |

``pretrained=False`` builds any variant with random weights from the ``text_config`` held here,
without touching a file or the network. ``pretrained=True`` loads the text encoder's weights
(``AutoModel.from_pretrained`` on the resolved local folder) and the image weights from
``image_pretrained`` when set (else the image encoder stays random, with a logged notice).

:func:`load_model` is the one way to load a saved BTDNet (the predictor, the benchmark, the demo
and the training task's resume all go through it or its :func:`load_weights`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from btdnet.models.bsc import BidirectionalSpatialCorrelation
from btdnet.models.btdnet import MODEL_TYPE, TRAINING_HEADS_PREFIX, BTDNet
from btdnet.models.config import OBJECTIVE_READINGS, BTDNetConfig
from btdnet.models.dmols import DualModalObjectLearning
from btdnet.models.hf_loading import TextEncoderLoadError
from btdnet.models.hub import resolve_model_source
from btdnet.models.image_encoder import ImageEncoder
from btdnet.models.losses import BTDNetCriterion
from btdnet.models.presence_head import PresenceHead
from btdnet.models.serialization import (
    CONFIG_NAME,
    CheckpointError,
    load_model_dir,
    load_state_strict,
    unbuildable_checkpoint,
)
from btdnet.models.text_encoder import TextEncoder, build_text_model, text_config_dict
from btdnet.models.twin_stream_decoder import TwinStreamDecoder

logger = logging.getLogger(__name__)

BERT_BASE_TEXT = {
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
MINILM_TEXT = {
    **BERT_BASE_TEXT,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "intermediate_size": 1536,
}
TINY_TEXT = {
    **BERT_BASE_TEXT,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}

VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {
        "image_encoder": "swin_base_patch4_window12_384",
        "image_size": 480,
        "image_encoder_kwargs": {"window_size": 12, "drop_path_rate": 0.3},
        "text_encoder": "bert-base-uncased",
        "text_config": BERT_BASE_TEXT,
        "fusion_dim": 128,
        "decoder_dim": 64,
    },
    "small": {
        "image_encoder": "swin_tiny_patch4_window7_224",
        "image_size": 480,
        "image_encoder_kwargs": {"window_size": 7, "drop_path_rate": 0.2},
        "text_encoder": None,
        "text_config": MINILM_TEXT,
        "fusion_dim": 64,
        "decoder_dim": 64,
    },
    "demo": {
        "image_encoder": "swin_tiny_patch4_window7_224",
        "image_size": 128,
        "image_encoder_kwargs": {
            "embed_dim": 32,
            "depths": [1, 1, 2, 1],
            "num_heads": [1, 2, 4, 8],
            "window_size": 4,
            "drop_path_rate": 0.0,
        },
        "text_encoder": None,
        "text_config": MINILM_TEXT,
        "max_tokens": 16,
        "fusion_dim": 32,
        "decoder_dim": 32,
    },
    "tiny": {
        "image_encoder": "swin_tiny_patch4_window7_224",
        "image_size": 96,
        "image_encoder_kwargs": {
            "embed_dim": 16,
            "depths": [1, 1, 1, 1],
            "num_heads": [1, 1, 2, 2],
            "window_size": 3,
            "drop_path_rate": 0.0,
        },
        "text_encoder": None,
        "text_config": TINY_TEXT,
        "max_tokens": 12,
        "fusion_dim": 16,
        "decoder_dim": 16,
    },
}


def variant_config(variant: str, **overrides: Any) -> BTDNetConfig:
    """The ``BTDNetConfig`` of a named variant with ``overrides`` applied."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown BTDNet variant {variant!r}; choose from {sorted(VARIANTS)}")
    unknown = sorted(set(overrides) - set(BTDNetConfig.field_names()))
    if unknown:
        raise ValueError(
            f"unknown overrides {unknown}; BTDNetConfig fields: {BTDNetConfig.field_names()}"
        )
    values = {**VARIANTS[variant], **overrides, "variant": variant}
    values["text_config"] = dict(values["text_config"]) if values.get("text_config") else None
    values["image_encoder_kwargs"] = dict(values.get("image_encoder_kwargs") or {})
    return BTDNetConfig(**values)


def _build_criterion(config: BTDNetConfig) -> BTDNetCriterion:
    """The loss terms and their weights as the config sets them."""
    return BTDNetCriterion(
        class_weights=config.ce_class_weights,
        dice_weight=config.dice_weight,
        target_stream_weight=config.target_stream_weight,
        background_weight=config.background_weight,
        agreement_weight=config.agreement_weight,
        alignment_weight=config.alignment_weight if config.use_alignment_loss else 0.0,
        alignment_kind=config.alignment_kind,
        extra_weights={
            "dmols_visual": config.dmols_visual_weight,
            "dmols_language": config.dmols_language_weight,
        },
        presence_weight=config.presence_weight if config.use_presence else 0.0,
    )


def build_btdnet(config: BTDNetConfig, *, pretrained: bool, training: bool = True) -> BTDNet:
    """Assemble a BTDNet from its config.

    Args:
        config: the configuration; with ``pretrained`` its ``text_config`` is replaced by the
            loaded text encoder's, so that checkpoints rebuild without files.
        pretrained: load encoder weights from local files (see the module docstring).
        training: build the D-MOLS heads (when ``config.use_dmols``).
    """
    text_model = build_text_model(
        name=config.text_encoder, text_config=config.text_config, pretrained=pretrained
    )
    if pretrained:
        config = dataclasses.replace(config, text_config=text_config_dict(text_model.config))
    text_encoder = TextEncoder(text_model)

    image_path = config.image_pretrained if pretrained else None
    if pretrained and image_path is None:
        logger.info(
            "no image_pretrained file set: %s starts from random weights", config.image_encoder
        )
    image_encoder = ImageEncoder(
        config.image_encoder,
        config.image_size,
        pretrained_path=image_path,
        **config.image_encoder_kwargs,
    )
    stages = len(image_encoder.channels)
    fusions = [
        BidirectionalSpatialCorrelation(
            visual_dim=channels,
            text_dim=text_encoder.hidden_size,
            dim=config.fusion_dim,
            bidirectional=config.use_bsc,
            update_words=index < stages - 1,
            reading=config.bsc_reading,
        )
        for index, channels in enumerate(image_encoder.channels)
    ]
    decoder = TwinStreamDecoder(
        in_channels=image_encoder.channels, dim=config.decoder_dim, twin=config.use_twin_stream
    )
    criterion = _build_criterion(config)
    dmols = None
    if config.use_dmols and training:
        dmols = DualModalObjectLearning(
            visual_dim=config.decoder_dim,
            text_dim=text_encoder.hidden_size,
            vocab_size=int(text_encoder.word_embeddings.shape[0]),
            patch=image_encoder.strides[1],
            mask_token_id=config.mask_token_id,
            region_mask_ratio=config.dmols_region_mask_ratio,
            context_mask_ratio=config.dmols_context_mask_ratio,
            word_mask_ratio=config.dmols_word_mask_ratio,
            reconstruct=config.dmols_reconstruct,
        )
    presence_head = None
    if config.use_presence:
        presence_head = PresenceHead(
            visual_dim=config.decoder_dim,
            text_dim=text_encoder.hidden_size,
            hidden_dim=config.decoder_dim,
        )
    return BTDNet(
        config=config,
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        fusions=fusions,
        decoder=decoder,
        criterion=criterion,
        dmols=dmols,
        presence_head=presence_head,
    )


def build_model(
    variant: str, pretrained: bool = True, *, training: bool = True, **overrides: Any
) -> BTDNet:
    """Build a named variant (``paper``, ``small``, ``demo``, ``tiny``) with config overrides.

    ``training=False`` leaves out the D-MOLS heads (inference only).
    """
    return build_btdnet(
        variant_config(variant, **overrides), pretrained=pretrained, training=training
    )


def load_weights(model: BTDNet, directory: str | Path) -> BTDNet:
    """Load the weights of a BTDNet folder into a built ``model`` (all must fit; in place).

    Used to resume training: the training task builds the model from its config and the
    checkpoint's tensors must match it exactly, and so must the readings that shape the
    objective but no tensor (``OBJECTIVE_READINGS``: resumed under another one, the run would
    load and silently train towards something else).

    Raises:
        CheckpointError: one line naming the folder and the first reading that differs.
    """
    state, config_dict = load_model_dir(directory, MODEL_TYPE)
    try:
        saved = BTDNetConfig.from_dict(config_dict)  # missing fields: LEGACY_VALUES, defaults
    except ValueError as error:
        raise unbuildable_checkpoint(directory, error) from error
    for name in OBJECTIVE_READINGS:
        was, now = getattr(saved, name), getattr(model.config, name)
        if was != now:
            raise CheckpointError(
                f"{directory}: trained with {name}={was!r}, but the run's config now builds "
                f"{name}={now!r}; resume with --set model.overrides.{name}={was}"
            )
    load_state_strict(model, state, str(directory))
    return model


def load_model(
    directory: str | Path,
    *,
    variant: str | None = None,
    training: bool | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
) -> BTDNet:
    """Load a BTDNet folder written by ``save_pretrained``, or a Hugging Face Hub repo id.

    Args:
        directory: the model folder (``model.safetensors`` + ``config.json``), or a Hub repo
            id (``owner/name``) fetched into (or, offline, read from) the Hugging Face cache
            (:func:`btdnet.models.hub.resolve_model_source`).
        variant: if given, refuse a checkpoint of another variant.
        training: keep the D-MOLS heads (True: fresh heads if the checkpoint has none),
            drop them (False), or follow the checkpoint (None).
        revision, token, cache_dir: for a Hub repo id, as huggingface_hub's
            ``snapshot_download`` takes them (branch/tag/commit; access token; cache folder).

    Raises:
        CheckpointError: one line naming the folder: missing, not a BTDNet folder, another
            variant, unreadable, or weights that do not fit the config they came with; or
            naming the repo id: not downloadable, or not cached while offline.
    """
    directory = resolve_model_source(directory, revision=revision, token=token, cache_dir=cache_dir)
    state, config_dict = load_model_dir(directory, MODEL_TYPE, variant)
    try:
        config = BTDNetConfig.from_dict(config_dict)
        has_heads = any(key.startswith(TRAINING_HEADS_PREFIX) for key in state)
        keep_heads = has_heads if training is None else training
        model = build_btdnet(config, pretrained=False, training=keep_heads)
    except CheckpointError:
        raise
    except TextEncoderLoadError as error:  # already one line naming the text encoder's folder
        raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: {error}") from error
    except Exception as error:  # a config this toolkit cannot build: one line, the folder named
        raise unbuildable_checkpoint(directory, error) from error
    if model.dmols is None:
        state = {k: v for k, v in state.items() if not k.startswith(TRAINING_HEADS_PREFIX)}
    elif not has_heads:
        logger.info("%s: no D-MOLS heads in the checkpoint; fresh heads are used", directory)
        fresh = model.state_dict()
        state = {**{k: v for k, v in fresh.items() if k.startswith(TRAINING_HEADS_PREFIX)}, **state}
    load_state_strict(model, state, f"{directory} ('{config.variant}' BTDNet)")
    return model


def _from_pretrained(
    cls: type[BTDNet],
    source: str | Path,
    *,
    variant: str | None = None,
    training: bool | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
) -> BTDNet:
    """Load a saved BTDNet from a folder or a Hugging Face Hub repo id: :func:`load_model`
    (``revision``, ``token``, ``cache_dir`` as in huggingface_hub).

    The class method lives here, beside the builders, so that ``btdnet.py`` never imports this
    module (no import cycle) while ``BTDNet.from_pretrained(...)`` reads as in transformers.
    """
    return load_model(
        source,
        variant=variant,
        training=training,
        revision=revision,
        token=token,
        cache_dir=cache_dir,
    )


BTDNet.from_pretrained = classmethod(_from_pretrained)  # type: ignore[attr-defined]
