"""Weight files in and out: foreign checkpoints (read without running code) and our model folders.

Two jobs live here because both are about moving tensors between files and modules:

- reading weights published by others (``.pth``/``.pt``/``.bin``/``.ckpt`` through
  ``torch.load(weights_only=True)``, ``.safetensors`` through safetensors) and loading them into a
  module leniently, with a one-line report of what matched;
- our own model folders: ``model.safetensors`` + ``config.json``
  ``{"model_type": ..., "variant": ..., "config": {...}, "format_version": 1}``. BTDNet writes
  ``model_type="btdnet"``, BiCoR-Seg ``"bicor"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT_VERSION = 1
_TORCH_SUFFIXES = {".pth", ".pt", ".bin", ".ckpt"}
_WRAPPER_KEYS = ("model", "state_dict", "model_state", "module")


class CheckpointError(ValueError):
    """A weight file or model folder that cannot be used; the message names the file and why."""


# ----------------------------------------------------------------------------- foreign weights


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weight file into a flat ``{name: tensor}`` dict without executing any code.

    Wrappers such as ``{"model": {...}}`` (official Swin releases) or ``{"state_dict": {...}}``
    are unwrapped; entries that are not tensors (epoch counters, optimizer states) are dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weight file not found")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        state: Any = load_file(str(path), device="cpu")
    elif suffix in _TORCH_SUFFIXES:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # any unpickling failure is the file's fault
            raise CheckpointError(
                f"{path}: cannot be read with torch.load(weights_only=True) ({error}); only plain "
                "tensor files are accepted"
            ) from error
    else:
        raise CheckpointError(
            f"{path}: unknown weight file type {suffix!r}; "
            "use .safetensors, .pth, .pt, .bin or .ckpt"
        )
    while isinstance(state, Mapping):
        wrapped = next((state[k] for k in _WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if wrapped is None:
            break
        state = wrapped
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a dict of tensors")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: no tensors found")
    return tensors


def _name_list(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")


@dataclass
class LoadReport:
    """What a lenient load matched. ``str(report)`` is one readable line."""

    source: str
    loaded: int
    total: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{self.source}: loaded {self.loaded}/{self.total} tensors"]
        if self.missing:
            parts.append(f"missing ({len(self.missing)}): {_name_list(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected ({len(self.unexpected)}): {_name_list(self.unexpected)}")
        if self.mismatched:
            parts.append(f"shape mismatch ({len(self.mismatched)}): {_name_list(self.mismatched)}")
        return "; ".join(parts)


def load_state_dict_report(
    module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str
) -> LoadReport:
    """Load the tensors of ``state`` whose names and shapes match ``module``; report the rest."""
    own = module.state_dict()
    matched: dict[str, torch.Tensor] = {}
    mismatched: list[str] = []
    unexpected: list[str] = []
    for name, tensor in state.items():
        if name not in own:
            unexpected.append(name)
        elif tuple(own[name].shape) != tuple(tensor.shape):
            mismatched.append(f"{name} {tuple(tensor.shape)} vs {tuple(own[name].shape)}")
        else:
            matched[name] = tensor
    module.load_state_dict(matched, strict=False)
    missing = [name for name in own if name not in matched]
    return LoadReport(
        source=source,
        loaded=len(matched),
        total=len(own),
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched,
    )


# ----------------------------------------------------------------------------- our model folders


def save_model_dir(
    directory: str | Path,
    state_dict: Mapping[str, torch.Tensor],
    config: dict[str, Any],
    model_type: str,
) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created if needed).

    ``config`` must be JSON-serialisable; its ``"variant"`` entry (if any) is also written at the
    top level so that a wrong-variant load can be refused before any tensor is read.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state_dict.items()}
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"model_type": model_type})
    meta = {
        "model_type": model_type,
        "variant": config.get("variant"),
        "config": config,
        "format_version": FORMAT_VERSION,
    }
    (directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return directory


def read_model_config(directory: str | Path) -> dict[str, Any]:
    """Read and check the ``config.json`` of a model folder (no tensors are read)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: model folder not found")
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path}: missing; not a model folder written by save_pretrained"
        )
    try:
        meta = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_path}: not valid JSON ({error})") from error
    if not isinstance(meta, dict) or "model_type" not in meta or "config" not in meta:
        raise CheckpointError(f"{config_path}: lacks 'model_type' or 'config'")
    if meta.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path}: format_version {meta['format_version']} is newer than this "
            f"toolkit reads ({FORMAT_VERSION}); upgrade the package"
        )
    return meta


def load_model_dir(
    directory: str | Path,
    expected_model_type: str,
    expected_variant: str | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a model folder; return ``(state_dict, config)``.

    Raises ``FileNotFoundError`` for a missing folder or file and ``CheckpointError`` when the
    folder holds another model type or (if ``expected_variant`` is given) another variant.
    """
    directory = Path(directory)
    meta = read_model_config(directory)
    if meta["model_type"] != expected_model_type:
        raise CheckpointError(
            f"{directory}: holds a '{meta['model_type']}' checkpoint, but a "
            f"'{expected_model_type}' model was asked to load it"
        )
    variant = meta.get("variant")
    if expected_variant is not None and variant != expected_variant:
        raise CheckpointError(
            f"{directory}: holds variant '{variant}' of {expected_model_type}, but variant "
            f"'{expected_variant}' was expected"
        )
    weights_path = directory / WEIGHTS_NAME
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: weights file missing")
    return load_file(str(weights_path), device="cpu"), dict(meta["config"])
