"""Training configuration files: YAML plus ``--set key.path=value`` overrides.

A config is a plain nested dict here. Nothing here knows what the keys mean: the trainer
(``TrainSettings``) and each task read their sections into frozen dataclasses
(``btdnet.engine.sections``), which refuse unknown keys. Values given with ``--set`` are
parsed as YAML scalars: ``--set train.lr=1e-4`` gives a float and
``--set data.eval_splits=[val,test]`` a list.

The configs of ``configs/`` ship with the package (``btdnet/configs/`` once installed):
``load_config("synthetic.yaml")`` -- a bare name that is no file in the current folder -- reads
the shipped one, so an installed toolkit trains with ``btdnet-train --config synthetic.yaml``.
A path (``configs/rrsisd.yaml``, ``my.yaml``) is always read as that file.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from btdnet.safe_write import write_text_atomic


class ConfigError(ValueError):
    """A config file or override that cannot be used."""


def _parse_value(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML 1.1 reads "1e-4" as a string; users mean a number.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(config: dict, overrides: Iterable[str]) -> dict:
    """Return a copy of ``config`` with each ``a.b.c=value`` override applied."""
    result = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set {item!r}: empty key")
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = _parse_value(raw)
    return result


def _fix_numbers(node: Any) -> Any:
    """YAML 1.1 leaves ``3e-5`` (no dot) a string; turn such strings into floats."""
    if isinstance(node, dict):
        return {k: _fix_numbers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_fix_numbers(v) for v in node]
    if isinstance(node, str):
        try:
            return float(node) if any(c in node.lower() for c in "e.") else node
        except ValueError:
            return node
    return node


def shipped_configs() -> Path | None:
    """The folder of the configs shipped with the toolkit: ``btdnet/configs`` in an installed
    package, ``configs/`` beside ``btdnet/`` in a source checkout; None when neither exists."""
    installed = resources.files("btdnet").joinpath("configs")
    if installed.is_dir():
        return Path(str(installed))
    checkout = Path(__file__).resolve().parents[2] / "configs"
    return checkout if checkout.is_dir() else None


def shipped_config_names() -> list[str]:
    """The names ``--config`` accepts without a path (``synthetic.yaml``, ...)."""
    folder = shipped_configs()
    return sorted(p.name for p in folder.glob("*.yaml")) if folder is not None else []


def resolve_config_path(path: str | Path) -> Path:
    """``path`` itself when it is a file or names a folder; else, for a bare name (with or
    without ``.yaml``), the shipped config of that name; else ``path`` unchanged."""
    path = Path(path)
    if path.is_file() or path.parent != Path("."):
        return path
    folder = shipped_configs()
    if folder is None:
        return path
    for name in (path.name, f"{path.name}.yaml"):
        if (folder / name).is_file():
            return folder / name
    return path


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict:
    """Read a YAML config (a file, or a shipped config's name) and apply overrides. Errors name
    the file."""
    path = resolve_config_path(path)
    if not path.is_file():
        names = ", ".join(shipped_config_names())
        shipped = f" (shipped configs, usable by name: {names})" if names else ""
        raise ConfigError(f"{path}: config file not found{shipped}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return apply_overrides(_fix_numbers(data), overrides)


def save_config(config: dict, path: str | Path) -> None:
    """Write the resolved config as YAML (what the run really used)."""
    write_text_atomic(path, yaml.safe_dump(config, sort_keys=False))
