"""Typed config sections: frozen dataclasses built from the YAML's plain dicts.

Every key of a config is read into a field of a frozen dataclass, once. A key that no field
names is refused with one line that names it and suggests the closest known key
(``data.imag_size: unknown key; did you mean data.image_size?``); a value of the wrong type is
refused naming the key and the type it needs. Nothing here knows what a key means.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from btdnet.engine.config import ConfigError

T = TypeVar("T")


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (difflib), or None when nothing is close."""
    matches = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def refuse_unknown_keys(data: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """Raise :class:`ConfigError` for the first key of ``data`` that is not in ``known``."""
    known = sorted(known)
    for key in data:
        if key in known:
            continue
        guess = did_you_mean(str(key), known)
        hint = f"did you mean {_path(where, guess)}?" if guess else f"known: {', '.join(known)}"
        raise ConfigError(f"{_path(where, str(key))}: unknown key; {hint}")


def check_choice(value: str, choices: Iterable[str], where: str) -> None:
    """Refuse ``value`` outside ``choices`` with one line naming the key and the closest one."""
    choices = list(choices)
    if value in choices:
        return
    guess = did_you_mean(str(value), choices)
    hint = f"did you mean {guess!r}? " if guess else ""
    raise ConfigError(f"{where}: unknown value {value!r}; {hint}choose from {', '.join(choices)}")


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """``value`` checked (and, for lists -> tuples and ints -> floats, converted) to ``kind``."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if kind is Any:
        return value
    if dataclasses.is_dataclass(kind):
        return build_section(kind, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(kind)
        item = args[0] if args else Any
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or kind is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: config fields of type {_type_name(kind)} are not supported")


def build_section(cls: type[T], data: Mapping[str, Any] | None, where: str) -> T:
    """A ``cls`` (a dataclass) from ``data``: unknown keys refused, every value type-checked.

    ``where`` is the section's dotted path in the config (``"data"``, ``"data.augment"``), used
    in messages. ``None`` (an empty YAML section) gives the defaults.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a section (key: value lines), got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    refuse_unknown_keys(data, fields, where)
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _coerce(data[name], hints[name], _path(where, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_path(where, name)}: required, and not set")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{where}: {error}") from error


def agreed_image_size(
    model_overrides: Mapping[str, Any],
    data_size: Any,
    data_key: str,
    model_keys: tuple[str, ...] = ("image_size",),
) -> Any:
    """The model's input size under the one rule of every task: the data section sets it, and
    ``model.overrides`` may repeat it but not contradict it.

    Returns ``data_size``, else the model override (``None`` when neither is set: the
    variant's). Raises ``ConfigError`` naming both keys when both are set and differ.
    """
    for key in model_keys:
        value = model_overrides.get(key)
        if value is None:
            continue
        if data_size is not None and value != data_size:
            raise ConfigError(
                f"model.overrides.{key} ({value}) and {data_key} ({data_size}) disagree: set "
                f"the input size once, as {data_key}"
            )
        if data_size is None:
            return value
    return data_size


def section_dict(section: Any) -> dict[str, Any]:
    """The plain-dict form of a section (tuples as lists), as it would be written in YAML."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(section).items()}
