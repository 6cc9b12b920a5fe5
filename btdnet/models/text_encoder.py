"""Text encoder over ``transformers.AutoModel``: word features, their mask and a sentence feature.

BERT-base (the paper), the offline all-MiniLM-L6-v2 (the default) or any local folder that
``AutoModel`` reads. Encoder-decoder models contribute their encoder. The pooler is not built:
the sentence feature is the mask-weighted mean of the word features, which every encoder has
(and leaves no unused parameters behind).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.utils import logging as hf_logging

from btdnet.models.hf_loading import TextEncoderLoadError, hf_load, refuse_unknown_model_type
from btdnet.resources import resolve_text_encoder

# Keys of a transformers config that describe a file, not an architecture.
_NON_ARCH_KEYS = {"transformers_version", "architectures", "_name_or_path", "dtype", "torch_dtype"}


@dataclass
class TextFeatures:
    """Output of ``TextEncoder``.

    Attributes:
        words: (B, T, D) contextual word features.
        mask: (B, T) bool, True for real tokens.
        sentence: (B, D) mask-weighted mean of ``words``.
    """

    words: torch.Tensor
    mask: torch.Tensor
    sentence: torch.Tensor


def masked_mean(words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``words`` (B, T, D) over the True entries of ``mask`` (B, T) -> (B, D)."""
    weights = mask.to(words.dtype).unsqueeze(-1)  # (B, T, 1)
    return (words * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class TextEncoder(nn.Module):
    """Wraps a transformers encoder model (already built or loaded).

    Args:
        model: a ``PreTrainedModel`` whose forward takes ``input_ids`` and ``attention_mask`` and
            returns ``last_hidden_state``.
    """

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        self.model = model
        config = model.config
        self.hidden_size = int(getattr(config, "hidden_size", None) or config.d_model)

    @property
    def word_embeddings(self) -> torch.Tensor:
        """The (V, D) input word-embedding matrix (used to tie the D-MOLS word predictor)."""
        return self.model.get_input_embeddings().weight

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextFeatures:
        """Token ids (B, T) and attention mask (B, T) -> ``TextFeatures``."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        words = out.last_hidden_state  # (B, T, D)
        mask = attention_mask.bool()
        return TextFeatures(words=words, mask=mask, sentence=masked_mean(words, mask))


def text_config_dict(config: Any) -> dict[str, Any]:
    """A transformers config as a JSON-able dict that ``build_text_model`` rebuilds from."""
    data = {k: v for k, v in config.to_diff_dict().items() if k not in _NON_ARCH_KEYS}
    data["model_type"] = config.model_type
    return data


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence transformers' per-load report and progress bar while our model loads.

    The pooler is left out on purpose (word features are used), so the report's "unexpected
    pooler keys" would only alarm users; real failures still raise.
    """
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _without_pooler(factory: Any, *args: Any, **kwargs: Any) -> PreTrainedModel:
    with _quiet_loading():
        try:
            return factory(*args, add_pooling_layer=False, **kwargs)
        except TypeError:  # architectures without a pooler option
            return factory(*args, **kwargs)


def build_text_model(
    *, name: str | None, text_config: dict[str, Any] | None, pretrained: bool
) -> PreTrainedModel:
    """Build the transformers model behind ``TextEncoder``.

    Args:
        name: text encoder name or local folder (``None`` or ``"minilm"``: the offline MiniLM;
            ``"bert-base"``: ``bert-base-uncased``), used only when ``pretrained``.
        text_config: architecture dict (``model_type`` + config fields, BERT when no
            ``model_type``), used when not ``pretrained``. Touches no file.
        pretrained: load weights with ``AutoModel.from_pretrained`` (local files only).
    """
    if pretrained:
        source = resolve_text_encoder(name)
        load = partial(_without_pooler, AutoModel.from_pretrained)
        try:
            return hf_load(load, source, what="text encoder", dtype=torch.float32)
        except TextEncoderLoadError as error:
            raise TextEncoderLoadError(
                f"{error}; pass text_encoder=<local folder holding config.json and weights>, "
                "or text_encoder=None for the offline MiniLM"
            ) from error
    if not text_config:
        raise ValueError(
            "pretrained=False needs `text_config` (a dict of BertConfig-style fields) to build the "
            "text encoder without reading files"
        )
    fields = dict(text_config)
    model_type = str(fields.pop("model_type", "bert"))
    refuse_unknown_model_type(model_type, "text_config")
    for key in ("auto_map", "custom_pipelines"):  # names of code to import: never honoured
        fields.pop(key, None)
    config = AutoConfig.for_model(model_type, **fields)
    return _without_pooler(AutoModel.from_config, config, trust_remote_code=False)


def trim_trailing_padding(
    input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the token columns after the batch's last real token: (B, T) -> (B, T').

    Expressions are padded to ``max_tokens``; most are shorter, and the padded columns cost
    encoder time while every consumer masks them out (attention, BSC, pooled sentence), so the
    outputs are unchanged. At least one column is kept. Under ``torch.compile`` nothing is
    trimmed: a data-dependent length would break the graph and recompile for every length.
    """
    if torch.compiler.is_compiling():
        return input_ids, attention_mask
    real_columns = attention_mask.bool().any(dim=0).nonzero()  # (K, 1)
    keep = int(real_columns.max()) + 1 if real_columns.numel() else 1
    if keep == input_ids.shape[1]:
        return input_ids, attention_mask
    return input_ids[:, :keep], attention_mask[:, :keep]
