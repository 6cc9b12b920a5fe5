"""Text-prompted inference: the :class:`Predictor` API and the ``btdnet-predict`` CLI.

The names below are imported on first use, so that ``btdnet-predict --help`` starts without
loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["CheckpointError", "Prediction", "Predictor", "TextTruncatedWarning"]

if TYPE_CHECKING:
    from btdnet.errors import CheckpointError
    from btdnet.predict.predictor import Prediction, Predictor, TextTruncatedWarning

_LOCATIONS = {
    "CheckpointError": "btdnet.errors",
    "Prediction": "btdnet.predict.predictor",
    "Predictor": "btdnet.predict.predictor",
    "TextTruncatedWarning": "btdnet.predict.predictor",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        import importlib

        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'btdnet.predict' has no attribute {name!r}")
