"""Closed-set training configs whose evaluation values would fail only at the first
evaluation (hours into a run): refused when the config is read, with one line."""

from __future__ import annotations

import pytest

from bicor.task import SegConfig
from btdnet.engine.config import ConfigError


@pytest.mark.parametrize(
    ("evaluation", "message"),
    [
        ({"stride": 0}, "eval.stride: must be >= 1 pixel, got 0"),
        ({"window": -4}, "eval.window: must be >= 1 pixel, got -4"),
        ({"window_batch": 0}, "eval.window_batch: must be >= 1, got 0"),
        (
            {"window": 128, "stride": 200},
            "eval.stride: 200 is larger than eval.window 128: pixels between windows would "
            "never be predicted",
        ),
    ],
)
def test_evaluation_values_are_checked_when_the_config_is_read(evaluation, message) -> None:
    config = {"model": {"variant": "tiny"}, "eval": evaluation}
    with pytest.raises(ConfigError) as caught:
        SegConfig.from_config(config)
    assert str(caught.value) == message


def test_equal_window_and_stride_are_accepted() -> None:
    config = SegConfig.from_config({"model": {"variant": "tiny"}, "eval": {"window": 128}})
    assert (config.eval.window, config.eval.stride) == (128, None)
