"""The presence rule of generalized referring, in one place.

A model with a presence head gives one logit per expression; ``sigmoid(logit) >= threshold``
answers "there is a target", below it "no target" (an empty mask whatever the pixel logits
say). A model without a presence head answers "present" for every expression. Evaluation,
:class:`~btdnet.predict.predictor.Predictor`, scene mode, the web service and the presence
calibration all decide with :func:`is_present` (through :meth:`BTDNetOutput.present
<btdnet.models.btdnet.BTDNetOutput.present>` or :func:`output_present`); the default threshold
is :data:`DEFAULT_PRESENCE_THRESHOLD` (a model's ``config.presence_threshold`` overrides it;
a call's ``presence_threshold=`` overrides both, for that call only).

What an ANSWER says (:func:`present_answer`): ``present`` is True only when the head says
present and the mask has pixels, False for "not found", and None for a model without a
presence head, which cannot say absent (:data:`NO_PRESENCE_HEAD`, given as ``present_note``
by :func:`presence_note`): never True with an empty mask.
"""

from __future__ import annotations

from typing import Any

import torch

DEFAULT_PRESENCE_THRESHOLD = 0.5
NO_PRESENCE_HEAD = "this model has no presence head: it cannot say absent"


def present_answer(head_says: bool | None, area: int) -> bool | None:
    """``present`` of an answer: None without a presence head (``head_says`` None), else True
    only when the head says present and the mask has pixels."""
    if head_says is None:
        return None
    return bool(head_says) and area > 0


def presence_note(present: bool | None) -> dict[str, str]:
    """``{"present_note": ...}`` for an answer whose ``present`` is None, else nothing."""
    return {"present_note": NO_PRESENCE_HEAD} if present is None else {}


def is_present(presence: Any, threshold: float) -> Any:
    """The answer "present" for presence probabilities (a float, array or tensor)."""
    return presence >= threshold


def check_presence_threshold(value: Any) -> float:
    """``value`` as a float in [0, 1]; ``ValueError`` naming the argument otherwise."""
    threshold = float(value)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"presence_threshold must lie in [0, 1], got {value}")
    return threshold


def model_presence_threshold(model: Any) -> float:
    """The threshold a model was saved with (``config.presence_threshold``), else the default."""
    inner = getattr(model, "module", model)  # DDP wraps it
    config = getattr(inner, "config", None)
    return float(getattr(config, "presence_threshold", DEFAULT_PRESENCE_THRESHOLD))


def resolve_presence_threshold(value: float | None, model: Any) -> float:
    """A call's threshold: ``value`` when given (checked), else the model's."""
    if value is None:
        return model_presence_threshold(model)
    return check_presence_threshold(value)


def presence_probability(output: Any) -> torch.Tensor | None:
    """(B,) float32 presence probabilities of a forward pass; None without a presence head."""
    logits = getattr(output, "presence_logits", None)
    if logits is None:
        return None
    return torch.sigmoid(logits.float()).reshape(-1)


def output_present(output: Any, threshold: float) -> torch.Tensor:
    """(B,) bool answer "present" of a forward pass (all True without a presence head)."""
    presence = presence_probability(output)
    if presence is None:
        count = output.target_logits.shape[0]
        return torch.ones(count, dtype=torch.bool, device=output.target_logits.device)
    return is_present(presence, threshold)


__all__ = [
    "DEFAULT_PRESENCE_THRESHOLD",
    "NO_PRESENCE_HEAD",
    "check_presence_threshold",
    "is_present",
    "model_presence_threshold",
    "output_present",
    "presence_note",
    "presence_probability",
    "present_answer",
    "resolve_presence_threshold",
]
