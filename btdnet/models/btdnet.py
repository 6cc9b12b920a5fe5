"""BTDNet: image encoder + text encoder, BSC between the image stages, T-BTD, D-MOLS (training).

The parts are built elsewhere (``btdnet.models.variants``) and handed in; this module wires them,
owns the output dataclass, the lazy tokenizer, and our checkpoint folders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from btdnet.models.config import BTDNetConfig
from btdnet.models.dmols import DualModalObjectLearning, pool_region
from btdnet.models.hf_loading import hf_load
from btdnet.models.hub import push_model_to_hub
from btdnet.models.image_encoder import ImageEncoder
from btdnet.models.losses import BTDNetCriterion
from btdnet.models.param_groups import build_param_groups
from btdnet.models.presence_head import PresenceHead
from btdnet.models.serialization import save_model_dir
from btdnet.models.text_encoder import (
    TextEncoder,
    TextFeatures,
    masked_mean,
    trim_trailing_padding,
)
from btdnet.models.twin_stream_decoder import DecoderOutput, TwinStreamDecoder
from btdnet.presence import DEFAULT_PRESENCE_THRESHOLD, is_present, presence_probability
from btdnet.resources import resolve_text_encoder

logger = logging.getLogger(__name__)

MODEL_TYPE = "btdnet"
TRAINING_HEADS_PREFIX = "dmols."


@dataclass
class BTDNetOutput:
    """Output of ``BTDNet.forward``.

    Attributes:
        target_logits: (B, 1, H, W) joint target-vs-background logit at input resolution
            (target-stream minus background-stream logit): sigmoid gives P(target).
        background_logits: (B, 1, H, W) background-stream logits (single-stream models: the
            negated target logits).
        correlation_maps: per image stage, (B, 1, H/s_i, W/s_i) sentence-to-pixel correlation
            logits of BSC (empty when BSC is off).
        loss: weighted total loss when targets were given, else None.
        losses: every loss term and the weighted total under ``"total"`` (empty without targets).
        presence_logits: (B,) logit that the expression refers to something in the image
            (generalized referring); None when the model has no presence head.
    """

    target_logits: torch.Tensor
    background_logits: torch.Tensor
    correlation_maps: list[torch.Tensor] = field(default_factory=list)
    loss: torch.Tensor | None = None
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    presence_logits: torch.Tensor | None = None

    def presence(self) -> torch.Tensor:
        """(B,) probability that the target is present; all ones without a presence head."""
        presence = presence_probability(self)  # (B,) or None
        if presence is None:
            return self.target_logits.new_ones(self.target_logits.shape[0]).float()
        return presence

    def present(self, threshold: float = DEFAULT_PRESENCE_THRESHOLD) -> torch.Tensor:
        """(B,) bool: the answer is "there is a target" (:func:`btdnet.presence.is_present`)."""
        return is_present(self.presence(), threshold)

    def masks(self, threshold: float = DEFAULT_PRESENCE_THRESHOLD) -> torch.Tensor:
        """(B, 1, H, W) bool answer masks: ``target_logits > 0``, emptied where not present."""
        return (self.target_logits > 0) & self.present(threshold)[:, None, None, None]


class BTDNet(nn.Module):
    """Referring segmentation model (see ``docs/architecture.md`` for the contract).

    Args:
        config: the resolved configuration (saved with checkpoints).
        image_encoder: four-stage image encoder run stage by stage.
        text_encoder: word features + mask + sentence feature.
        fusions: one BSC block per image stage.
        decoder: the twin-stream (or single-stream) decoder.
        criterion: the loss terms and their weights.
        dmols: D-MOLS heads (training only) or None.
        presence_head: the generalized-referring presence head, or None (``use_presence`` off).
    """

    model_type = MODEL_TYPE

    def __init__(
        self,
        *,
        config: BTDNetConfig,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        fusions: Sequence[nn.Module],
        decoder: TwinStreamDecoder,
        criterion: BTDNetCriterion,
        dmols: DualModalObjectLearning | None = None,
        presence_head: PresenceHead | None = None,
    ) -> None:
        super().__init__()
        if not image_encoder.supports_stages:
            raise ValueError(f"{image_encoder.name}: BTDNet needs an image encoder run by stages")
        if len(fusions) != len(image_encoder.channels):
            raise ValueError(
                f"{len(fusions)} fusion blocks for {len(image_encoder.channels)} stages"
            )
        self.config = config
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.fusions = nn.ModuleList(fusions)
        self.decoder = decoder
        self.criterion = criterion
        self.dmols = dmols
        self.presence_head = presence_head
        self._tokenizer: Any = None

    # ------------------------------------------------------------------ inference / training

    def _check_inputs(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        targets: torch.Tensor | None,
    ) -> None:
        size = self.config.image_size
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must be (B, 3, H, W), got {tuple(pixel_values.shape)}")
        if tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(
                f"pixel_values are {tuple(pixel_values.shape[-2:])}, this model was built for "
                f"({size}, {size}); resize the images or build with "
                f"image_size={pixel_values.shape[-1]}"
            )
        batch = pixel_values.shape[0]
        if input_ids.ndim != 2 or input_ids.shape[0] != batch:
            raise ValueError(f"input_ids must be (B={batch}, T), got {tuple(input_ids.shape)}")
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask {tuple(attention_mask.shape)} != "
                f"input_ids {tuple(input_ids.shape)}"
            )
        if targets is not None and tuple(targets.shape) != (batch, size, size):
            raise ValueError(
                f"targets must be (B, H, W) = ({batch}, {size}, {size}), got {tuple(targets.shape)}"
            )

    def _encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, with_masked_copy: bool
    ) -> tuple[TextFeatures, torch.Tensor | None, torch.Tensor | None]:
        """Clean text features, and (for D-MOLS) the features of a word-masked copy + its mask."""
        if not with_masked_copy or self.dmols is None:
            return self.text_encoder(input_ids, attention_mask), None, None
        masked_ids, selected = self.dmols.mask_words(input_ids, attention_mask)
        both = self.text_encoder(
            torch.cat([input_ids, masked_ids]), torch.cat([attention_mask, attention_mask])
        )
        batch = input_ids.shape[0]
        clean = TextFeatures(
            words=both.words[:batch], mask=both.mask[:batch], sentence=both.sentence[:batch]
        )
        return clean, both.words[batch:], selected

    def _encode_image(
        self, pixel_values: torch.Tensor, text: TextFeatures
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Run the image stages with a BSC block after each (its output feeds the next stage).

        Returns the fused maps (B, C_i, H/s_i, W/s_i), the correlation maps (B, 1, H/s_i, W/s_i)
        and the words (B, T, D) as refined by the last stage that updates them.
        """
        words = text.words
        x = self.image_encoder.stem(pixel_values)
        fused: list[torch.Tensor] = []
        correlation_maps: list[torch.Tensor] = []
        for index, fusion in enumerate(self.fusions):
            x = self.image_encoder.stage(index, x)
            out = fusion(x, words, text.mask)
            x, words = out.visual, out.words
            fused.append(x)
            if out.correlation is not None:
                correlation_maps.append(out.correlation)
        return fused, correlation_maps, words

    def _presence_logits(
        self, decoded: DecoderOutput, sentence: torch.Tensor
    ) -> torch.Tensor | None:
        """(B,) presence logits from the decoder's output, None without a presence head."""
        if self.presence_head is None:
            return None
        low = decoded.target_logits
        if decoded.background_logits is not None and self.config.twin_reading == "joint":
            low = low - decoded.background_logits  # (B, 1, h, w) joint logit at decoder size
        return self.presence_head(decoded.target_features, low, sentence)

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        targets: torch.Tensor | None = None,
        present: torch.Tensor | None = None,
    ) -> BTDNetOutput:
        """Segment the object(s) each expression refers to.

        Args:
            pixel_values: (B, 3, S, S) normalised images, S = ``config.image_size``.
            input_ids: (B, T) token ids.
            attention_mask: (B, T) 1 for real tokens.
            targets: optional (B, S, S) 0/1 masks (the union of the referred objects; empty for
                a no-target expression); losses are computed when given.
            present: optional (B,) 1 where the expression has a target, for the presence loss;
                defaults to "the target mask is non-empty".
        """
        self._check_inputs(pixel_values, input_ids, attention_mask, targets)
        input_ids, attention_mask = trim_trailing_padding(input_ids, attention_mask)  # (B, T')
        run_dmols = self.training and targets is not None and self.dmols is not None
        text, masked_words, selected = self._encode_text(input_ids, attention_mask, run_dmols)

        fused, correlation_maps, words = self._encode_image(pixel_values, text)
        decoded = self.decoder(fused)
        size = pixel_values.shape[-2:]
        target = F.interpolate(
            decoded.target_logits, size=size, mode="bilinear", align_corners=False
        )
        background = None
        if decoded.background_logits is not None:
            background = F.interpolate(
                decoded.background_logits, size=size, mode="bilinear", align_corners=False
            )
        joint = target
        if background is not None and self.config.twin_reading == "joint":
            joint = target - background
        presence_logits = self._presence_logits(decoded, masked_mean(words, text.mask))

        losses: dict[str, torch.Tensor] = {}
        if targets is not None:
            extra: dict[str, torch.Tensor] = {}
            if run_dmols and self.dmols is not None:
                assert masked_words is not None and selected is not None
                extra["dmols_visual"] = self.dmols.visual_loss(
                    features=decoded.laterals[1],
                    pixel_values=pixel_values,
                    targets=targets,
                    sentence=masked_mean(words, text.mask),
                )
                extra["dmols_language"] = self.dmols.language_loss(
                    masked_words=masked_words,
                    selected=selected,
                    input_ids=input_ids,
                    region=pool_region(decoded.target_features, targets),
                    embeddings=self.text_encoder.word_embeddings,
                    clean_words=text.words,
                )
            losses = self.criterion(
                joint_logits=joint,
                targets=targets,
                target_stream=target if background is not None else None,
                background_stream=background,
                correlation_maps=correlation_maps,
                extra=extra,
                presence_logits=presence_logits,
                present=present,
            )
        return BTDNetOutput(
            target_logits=joint,
            background_logits=background if background is not None else -target,
            correlation_maps=correlation_maps,
            loss=losses.get("total"),
            losses=losses,
            presence_logits=presence_logits,
        )

    # ------------------------------------------------------------------ tokenizer

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer of ``config.text_encoder``, loaded on first use."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            source = resolve_text_encoder(self.config.text_encoder)
            tokenizer = hf_load(AutoTokenizer.from_pretrained, source, what="tokenizer")
            vocab = self.text_encoder.word_embeddings.shape[0]
            if len(tokenizer) > vocab:
                raise ValueError(
                    f"tokenizer of {source} has {len(tokenizer)} tokens, "
                    f"the text encoder only {vocab}"
                )
            if tokenizer.mask_token_id not in (None, self.config.mask_token_id):
                logger.warning(
                    "tokenizer mask id %s differs from config.mask_token_id %s (D-MOLS)",
                    tokenizer.mask_token_id,
                    self.config.mask_token_id,
                )
            self._tokenizer = tokenizer
        return self._tokenizer

    # ------------------------------------------------------------------ training heads, groups

    def strip_training_heads(self) -> BTDNet:
        """Remove the D-MOLS heads (inference needs neither their compute nor their weights)."""
        self.dmols = None
        return self

    def param_groups(
        self, weight_decay: float, text_lr_factor: float = 1.0, lr: float | None = None
    ) -> list[dict[str, Any]]:
        """Optimizer groups (see ``btdnet.models.param_groups.build_param_groups``)."""
        return build_param_groups(self, weight_decay=weight_decay, lr=lr, lr_factor=text_lr_factor)

    # ------------------------------------------------------------------ checkpoints
    # Loading is ``btdnet.models.load_model`` (beside the builders in ``variants.py``).

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` (the resolved config) to ``directory``."""
        return save_model_dir(directory, self.state_dict(), self.config.to_dict(), MODEL_TYPE)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload ``config.json``, ``model.safetensors`` and a generated model card to the
        Hugging Face Hub; ``run_dir=`` (the training run's folder) fills the card's data,
        recipe and best metrics. Keywords: :func:`btdnet.models.hub.push_to_hub`."""
        return push_model_to_hub(self, repo_id, **kwargs)
