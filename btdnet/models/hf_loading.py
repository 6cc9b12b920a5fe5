"""Every Hugging Face load goes through here: no code from files, no prompt, one-line errors.

``transformers`` runs Python shipped inside a model folder when its ``config.json`` or
``tokenizer_config.json`` names custom classes (``auto_map``), after asking "[y/N]" on stdin.
A text-encoder folder can be named by a checkpoint's config or by ``--set``, so it is untrusted:
such a folder is refused before ``transformers`` sees it, every call passes
``trust_remote_code=False`` (transformers then raises instead of prompting), and any failure is
raised as one :class:`TextEncoderLoadError` line naming the folder and the reason.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from btdnet.errors import one_line

T = TypeVar("T")

# Files whose ``auto_map`` / ``custom_pipelines`` ask transformers to import code from the folder.
_CODE_BEARING_FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json")
_CODE_KEYS = ("auto_map", "custom_pipelines")
_MAX_REASON = 300


class TextEncoderLoadError(OSError):
    """A text encoder or tokenizer that cannot be loaded (the message is one line)."""


def refuse_remote_code(source: str | Path) -> None:
    """Raise if the local folder ``source`` asks transformers to run code it carries."""
    folder = Path(source)
    if not folder.is_dir():
        return
    for name in _CODE_BEARING_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise TextEncoderLoadError(
                f"{path}: not readable JSON ({one_line(error, _MAX_REASON, first=True)})"
            ) from error
        keys = [k for k in _CODE_KEYS if isinstance(data, dict) and data.get(k)]
        if keys:
            raise TextEncoderLoadError(
                f"{path}: asks to run custom code ({', '.join(keys)}); refused, btdnet never "
                "runs code from model files (use a folder of a standard transformers model)"
            )


def refuse_unknown_model_type(model_type: str, where: str) -> None:
    """Raise one short line if transformers does not know ``model_type``."""
    from transformers import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        raise TextEncoderLoadError(
            f"{where}: unknown text encoder model_type {model_type!r} "
            "(not a transformers architecture; custom code is never run)"
        )


def _weights_file(folder: Path) -> Path:
    for name in ("pytorch_model.bin", "model.safetensors"):
        if (folder / name).is_file():
            return folder / name
    return folder


def hf_load(factory: Callable[..., T], source: str, *, what: str, **kwargs: Any) -> T:
    """Call ``factory(source, trust_remote_code=False, **kwargs)`` with one-line errors.

    Args:
        factory: ``AutoModel.from_pretrained``, ``AutoTokenizer.from_pretrained``, ...
        source: a local folder or a hub name.
        what: what is loaded, for the message (``"text encoder"``, ``"tokenizer"``).
    """
    refuse_remote_code(source)
    try:
        return factory(source, trust_remote_code=False, **kwargs)
    except TextEncoderLoadError:
        raise
    except pickle.UnpicklingError as error:
        weights = _weights_file(Path(source))
        raise TextEncoderLoadError(
            f"{weights}: refused, a pickle holding more than tensors (read with "
            "weights_only=True, nothing executed); convert it to model.safetensors"
        ) from error
    except Exception as error:  # transformers raises OSError, ValueError, KeyError, ...
        raise TextEncoderLoadError(
            f"{what} {source}: cannot be loaded ({one_line(error, _MAX_REASON, first=True)})"
        ) from error
