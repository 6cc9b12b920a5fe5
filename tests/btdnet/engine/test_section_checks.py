"""btdnet/engine/sections.py: every type check and the unknown-key check, each on its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from btdnet.engine.config import ConfigError
from btdnet.engine.sections import agreed_image_size, build_section, check_choice, section_dict


@dataclass(frozen=True)
class Inner:
    depth: int = 2


@dataclass(frozen=True)
class Section:
    steps: int = 1
    rate: float = 0.5
    name: str = "a"
    flag: bool = False
    sizes: tuple[int, ...] = (1, 2)
    extra: dict[str, Any] = field(default_factory=dict)
    maybe: float | None = None
    inner: Inner = field(default_factory=Inner)
    anything: Any = None


@dataclass(frozen=True)
class Required:
    size: int

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {self.size}")


def test_values_of_the_right_type_are_read_and_converted() -> None:
    data = {"steps": 3, "rate": 2, "name": "b", "flag": True, "sizes": [4, 5.0]}
    data |= {"extra": {"k": 1}, "maybe": 1, "inner": {"depth": 7}, "anything": [1]}
    section = build_section(Section, data, "train")
    assert section == Section(3, 2.0, "b", True, (4, 5), {"k": 1}, 1.0, Inner(7), [1])
    assert isinstance(section.rate, float) and isinstance(section.maybe, float)
    assert isinstance(section.sizes[1], int) and isinstance(section.steps, int)
    assert build_section(Section, None, "train") == Section()
    assert build_section(Section, {"maybe": None}, "train").maybe is None
    assert section_dict(section)["sizes"] == [4, 5]


BAD_VALUES = {
    "steps": ("3", "train.steps: expected an integer, got '3'"),
    "steps-bool": (True, "train.steps: expected an integer, got True"),
    "steps-fraction": (2.5, "train.steps: expected an integer, got 2.5"),
    "rate": ("fast", "train.rate: expected a number, got 'fast'"),
    "rate-bool": (False, "train.rate: expected a number, got False"),
    "name": (5, "train.name: expected a string, got 5"),
    "flag": ("yes", "train.flag: expected true or false, got 'yes'"),
    "flag-int": (1, "train.flag: expected true or false, got 1"),
    "sizes": (3, "train.sizes: expected a list, got 3"),
    "sizes-item": ([1, "x"], "train.sizes[1]: expected an integer, got 'x'"),
    "extra": ([1], "train.extra: expected a mapping, got [1]"),
    "maybe": ("x", "train.maybe: expected a number, got 'x'"),
    "inner": (4, "train.inner: expected a section"),
    "inner-key": ({"depht": 1}, "train.inner.depht: unknown key; did you mean train.inner.depth?"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_each_wrong_type_is_refused_naming_the_key(case) -> None:
    value, message = BAD_VALUES[case]
    with pytest.raises(ConfigError) as error:
        build_section(Section, {case.split("-")[0]: value}, "train")
    assert str(error.value).startswith(message)


def test_unknown_keys_are_refused_with_a_guess_or_the_known_keys() -> None:
    with pytest.raises(
        ConfigError, match=r"^train\.stpes: unknown key; did you mean train\.steps\?$"
    ):
        build_section(Section, {"rate": 0.1, "stpes": 2}, "train")
    with pytest.raises(ConfigError, match=r"^zzz: unknown key; known: depth$"):
        build_section(Inner, {"zzz": 1}, "")


def test_required_missing_and_post_init_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"^data\.size: required, and not set$"):
        build_section(Required, {}, "data")
    with pytest.raises(ConfigError, match=r"^data: size must be >= 0, got -1$"):
        build_section(Required, {"size": -1}, "data")
    with pytest.raises(ConfigError, match=r"^data: expected a section"):
        build_section(Required, [1], "data")


def test_choice_is_checked_with_the_closest_value() -> None:
    check_choice("adamw", ["adamw", "sgd"], "train.optimizer")
    with pytest.raises(ConfigError, match=r"unknown value 'adamv'; did you mean 'adamw'\? choose"):
        check_choice("adamv", ["adamw", "sgd"], "train.optimizer")


def test_the_model_override_is_the_image_size_when_the_data_sets_none() -> None:
    """``data.image_size`` left out: the model's override (under either name) is the input
    size that :meth:`ReferringConfig.image_size` reports; neither set: None (the variant's)."""
    from btdnet.task import ReferringConfig

    assert agreed_image_size({"image_size": 384}, None, "data.image_size") == 384
    legacy = ("image_size", "img_size")
    assert agreed_image_size({"img_size": 256}, None, "data.crop_size", legacy) == 256
    assert agreed_image_size({"image_size": 96}, 96, "data.image_size") == 96
    assert agreed_image_size({}, None, "data.image_size") is None
    only_model = {"model": {"variant": "tiny", "overrides": {"image_size": 64}}}
    assert ReferringConfig.from_config(only_model).image_size() == 64
