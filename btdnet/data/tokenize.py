"""Turn a referring expression into fixed-length token ids for a Hugging Face tokenizer."""

from __future__ import annotations

from typing import Any

import torch


def tokenize_expression(
    tokenizer: Any, text: str, max_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenise ``text`` to exactly ``max_tokens`` ids (truncated, then padded at the end).

    Special tokens (e.g. ``[CLS]``/``[SEP]``) are added as the tokenizer does by default.
    Padding uses the tokenizer's pad id, or 0 for tokenizers without one (GPT-style); padded
    positions have attention 0, so their id does not matter to the model.

    Returns ``input_ids`` and ``attention_mask``, both int64 ``(max_tokens,)``.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    encoded = tokenizer(text, truncation=True, max_length=max_tokens, padding=False)
    ids = list(encoded["input_ids"])[:max_tokens]
    attention = list(encoded.get("attention_mask", [1] * len(ids)))[: len(ids)]
    pad_id = getattr(tokenizer, "pad_token_id", None)
    pad_id = 0 if pad_id is None else int(pad_id)
    missing = max_tokens - len(ids)
    input_ids = torch.tensor(ids + [pad_id] * missing, dtype=torch.int64)  # (T,)
    attention_mask = torch.tensor(attention + [0] * missing, dtype=torch.int64)  # (T,)
    return input_ids, attention_mask
