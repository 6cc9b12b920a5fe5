"""Check a checkpoint folder before loading it, so that each mistake gets one clear line.

A BTDNet checkpoint folder holds ``model.safetensors`` and ``config.json`` with
``"model_type": "btdnet"`` (see ``docs/architecture.md``). A training run's output folder holds
such folders under ``checkpoints/best`` and ``checkpoints/last``. Errors are
:class:`btdnet.models.serialization.CheckpointError` (a ``ValueError``), the class the model's
own loader raises.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from btdnet.models.serialization import CONFIG_NAME, WEIGHTS_NAME, CheckpointError

__all__ = ["CheckpointError", "check_checkpoint_dir", "load_btdnet_checkpoint"]


def _run_folder_hint(folder: Path) -> str:
    """A pointer to ``checkpoints/best`` when ``folder`` is a training run's output folder."""
    for name in ("best", "last"):
        candidate = folder / "checkpoints" / name
        if (candidate / CONFIG_NAME).is_file():
            return f"; did you mean {candidate}?"
    return ""


def check_checkpoint_dir(checkpoint_dir: str | Path) -> Path:
    """Return the folder as a Path when it holds a BTDNet checkpoint; else raise.

    Raises:
        CheckpointError: the folder does not exist, is a file, has no (readable) config.json,
            holds another model type (e.g. a BiCoR-Seg ``"bicor"`` checkpoint) or has no
            ``model.safetensors``.
    """
    folder = Path(checkpoint_dir)
    if not folder.exists():
        raise CheckpointError(f"{folder}: checkpoint folder not found")
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder}: is a file; give the folder that holds {WEIGHTS_NAME} and {CONFIG_NAME}"
        )
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointError(
            f"{folder}: no {CONFIG_NAME}; not a BTDNet checkpoint folder{_run_folder_hint(folder)}"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_path}: unreadable ({exc})") from exc
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type == "bicor":
        raise CheckpointError(
            f"{folder}: is a BiCoR-Seg closed-set checkpoint (model_type 'bicor'); text "
            "prompts need a BTDNet referring checkpoint (model_type 'btdnet')"
        )
    if model_type != "btdnet":
        raise CheckpointError(
            f"{config_path}: model_type is {model_type!r}; a BTDNet checkpoint has 'btdnet'"
        )
    if not (folder / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS_NAME} (the model weights) in the folder")
    return folder


def load_btdnet_checkpoint(checkpoint_dir: str | Path) -> nn.Module:
    """Check the folder (:func:`check_checkpoint_dir`) and load the BTDNet it holds.

    Raises:
        CheckpointError: the folder is not a loadable BTDNet checkpoint; one line.
    """
    folder = check_checkpoint_dir(checkpoint_dir)
    from btdnet.models import BTDNet  # imported here: checking a folder needs no model code

    try:
        return BTDNet.from_pretrained(folder, training=False)
    except Exception as exc:  # safetensors, JSON and shape errors: report them on one line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"{folder}: cannot load the checkpoint ({type(exc).__name__}: {detail})"
        ) from exc
