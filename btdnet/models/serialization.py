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
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from btdnet.errors import CheckpointError, one_line
from btdnet.safe_write import atomic_output, write_text_atomic

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT_VERSION = 1
_TORCH_SUFFIXES = {".pth", ".pt", ".bin", ".ckpt"}
_WRAPPER_KEYS = ("model", "state_dict", "model_state", "module")
MODEL_KINDS = {"btdnet": "BTDNet referring", "bicor": "BiCoR-Seg closed-set"}

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "CheckpointError",
    "LoadReport",
    "check_model_dir",
    "load_model_dir",
    "load_state_dict_report",
    "load_state_strict",
    "read_model_config",
    "read_state_dict",
    "save_model_dir",
    "unbuildable_checkpoint",
]


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
        try:
            state: Any = load_file(str(path), device="cpu")
        except Exception as error:  # safetensors' own errors: a truncated or foreign file
            raise CheckpointError(
                f"{path}: not a readable safetensors file ({_first_line(error)})"
            ) from error
    elif suffix in _TORCH_SUFFIXES:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # any unpickling failure is the file's fault
            raise CheckpointError(
                f"{path}: cannot be read with torch.load(weights_only=True) "
                f"({_first_line(error)}); only plain tensor files are accepted"
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
    with atomic_output(directory / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"model_type": model_type})
    meta = {
        "model_type": model_type,
        "variant": config.get("variant"),
        "config": config,
        "format_version": FORMAT_VERSION,
    }
    write_text_atomic(directory / CONFIG_NAME, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return directory


def _first_line(error: BaseException) -> str:
    text = one_line(error, first=True)
    return f"{type(error).__name__}: {text}" if str(error).strip() else type(error).__name__


def unbuildable_checkpoint(directory: str | Path, error: BaseException) -> CheckpointError:
    """The one-line error for a checkpoint whose config this toolkit cannot build a model
    from: its ``config.json`` named, then the cause's type and first line."""
    return CheckpointError(
        f"{Path(directory) / CONFIG_NAME}: cannot load the checkpoint ({_first_line(error)})"
    )


def _kind(model_type: object) -> str:
    kind = MODEL_KINDS.get(str(model_type), repr(model_type))
    return f"{kind} checkpoint (model_type {model_type!r})"


def _run_folder_hint(folder: Path) -> str:
    """A pointer to ``checkpoints/best`` when ``folder`` is a training run's output folder."""
    for name in ("best", "last"):
        candidate = folder / "checkpoints" / name
        if (candidate / CONFIG_NAME).is_file():
            return f"; did you mean {candidate}?"
    return ""


def read_model_config(directory: str | Path) -> dict[str, Any]:
    """Read and check the ``config.json`` of a model folder (no tensors are read).

    Every problem is a :class:`CheckpointError` whose one line names the folder or file: a
    missing folder, a file given for a folder, a training run's folder (pointing to its
    ``checkpoints/best``), unreadable or incomplete JSON, a newer format.
    """
    folder = Path(directory)
    if not folder.exists():
        raise CheckpointError(f"{folder}: checkpoint folder not found")
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder}: is a file; give the folder that holds {WEIGHTS_NAME} and {CONFIG_NAME}"
        )
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointError(
            f"{folder}: no {CONFIG_NAME}; not a model folder written by save_pretrained"
            f"{_run_folder_hint(folder)}"
        )
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{config_path}: unreadable ({error})") from error
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_path}: not valid JSON ({error})") from error
    if not isinstance(meta, dict) or "model_type" not in meta or "config" not in meta:
        raise CheckpointError(f"{config_path}: lacks 'model_type' or 'config'")
    if not isinstance(meta["config"], dict):
        raise CheckpointError(f"{config_path}: 'config' is not a mapping")
    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path}: format_version {version!r} is newer than this toolkit reads "
            f"({FORMAT_VERSION}); upgrade the package"
        )
    return meta


def check_model_dir(
    directory: str | Path, expected_model_type: str, expected_variant: str | None = None
) -> dict[str, Any]:
    """Check that ``directory`` holds a complete ``expected_model_type`` folder; return its meta.

    Raises :class:`CheckpointError` (one line naming the folder) for every problem of
    :func:`read_model_config`, another model type or variant, or missing weights.
    """
    folder = Path(directory)
    meta = read_model_config(folder)
    model_type = meta["model_type"]
    if model_type != expected_model_type:
        raise CheckpointError(
            f"{folder}: is a {_kind(model_type)}, but a {_kind(expected_model_type)} is needed"
        )
    variant = meta.get("variant")
    if expected_variant is not None and variant != expected_variant:
        raise CheckpointError(
            f"{folder}: holds variant '{variant}' of {expected_model_type}, but variant "
            f"'{expected_variant}' was expected"
        )
    if not (folder / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS_NAME} (the model weights) in the folder")
    return meta


def load_model_dir(
    directory: str | Path,
    expected_model_type: str,
    expected_variant: str | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a model folder checked by :func:`check_model_dir`; return ``(state_dict, config)``.

    Raises :class:`CheckpointError` naming the folder for anything that cannot be used.
    """
    meta = check_model_dir(directory, expected_model_type, expected_variant)
    weights_path = Path(directory) / WEIGHTS_NAME
    try:
        state = load_file(str(weights_path), device="cpu")
    except Exception as error:  # safetensors' own errors: a truncated or foreign file
        raise CheckpointError(
            f"{Path(directory)}: cannot load the checkpoint ({WEIGHTS_NAME} is not a readable "
            f"safetensors file: {_first_line(error)})"
        ) from error
    warn_non_finite(state, weights_path)
    return state, dict(meta["config"])


class NonFiniteWeightsWarning(UserWarning):
    """A checkpoint holds NaN or infinite weights (a diverged run); it loads all the same."""


def warn_non_finite(state: Mapping[str, torch.Tensor], source: str | Path) -> list[str]:
    """Warn (one line naming ``source``) when floating tensors of ``state`` hold NaN/inf."""
    bad = [
        name
        for name, tensor in state.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        warnings.warn(
            f"{source}: {len(bad)} of {len(state)} tensors hold NaN or infinite values "
            f"({_name_list(bad, 3)}); its predictions will be meaningless",
            NonFiniteWeightsWarning,
            stacklevel=3,
        )
    return bad


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module``; every name and shape must match, else one-line error."""
    own = module.state_dict()
    mismatched = [k for k in state if k in own and own[k].shape != state[k].shape]
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state]
    if mismatched or unexpected or missing:
        raise CheckpointError(
            f"{source}: weights do not fit this model (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, shape mismatch {mismatched[:5]})"
        )
    module.load_state_dict(state, strict=True)
