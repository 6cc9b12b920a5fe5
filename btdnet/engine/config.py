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


MAX_NODES = 100_000  # nodes of the document with every alias expanded


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise ConfigError(f"line {line}: key {key!r} is given twice")
                seen[key] = True
        return super().construct_mapping(node, deep=deep)


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a document whose aliases refer to themselves or expand past :data:`MAX_NODES`.

    Walks the node graph as the loaded data would be walked (each alias expanded), without
    recursion; a node met again on its own path is a self-reference.
    """
    count = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    path: set[int] = set()
    while stack:
        node, leaving = stack.pop()
        if leaving:
            path.discard(id(node))
            continue
        count += 1
        if count > MAX_NODES:
            raise ConfigError(
                f"the document expands to more than {MAX_NODES:,} values (an alias bomb?)"
            )
        if id(node) in path:
            line = node.start_mark.line + 1
            raise ConfigError(f"line {line}: an alias refers to the value that holds it")
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            continue
        path.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children))


def safe_yaml(text: str) -> Any:
    """Parse YAML as ``yaml.safe_load`` does, refusing duplicate keys, self-referring aliases,
    alias bombs and nesting too deep for the parser (:class:`ConfigError`, one line)."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node)
        return loader.construct_document(node)
    except RecursionError as exc:
        raise ConfigError("nested too deeply") from exc
    finally:
        loader.dispose()


def _parse_value(text: str) -> Any:
    try:
        value = safe_yaml(text)
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
        try:
            node[parts[-1]] = _parse_value(raw)
        except ConfigError as exc:
            raise ConfigError(f"--set {item!r}: {exc}") from exc
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
        data = safe_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML ({reason})") from exc
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return apply_overrides(_fix_numbers(data), overrides)


def save_config(config: dict, path: str | Path) -> None:
    """Write the resolved config as YAML (what the run really used)."""
    write_text_atomic(path, yaml.safe_dump(config, sort_keys=False))
