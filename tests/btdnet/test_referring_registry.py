"""The referring registry (``btdnet.registry``) is the list every other place follows."""

from __future__ import annotations

import pytest

from btdnet.data.dataset import REFERRING_LOADERS
from btdnet.engine.config import ConfigError
from btdnet.registry import REFERRING_DATASETS
from btdnet.task import ReferringTask


def test_every_registered_name_has_a_loader_and_no_other():
    assert set(REFERRING_LOADERS) == set(REFERRING_DATASETS)
    assert len(set(REFERRING_DATASETS)) == len(REFERRING_DATASETS)


@pytest.mark.parametrize("name", REFERRING_DATASETS)
def test_the_task_accepts_every_registered_name(name):
    config = {"model": {"variant": "tiny"}, "data": {"dataset": name}}
    assert ReferringTask.from_config(config).config.data.dataset == name


def test_the_task_refuses_a_name_the_registry_lacks():
    with pytest.raises(ConfigError, match=r"data\.dataset: unknown value 'refcoco'"):
        ReferringTask.from_config({"model": {"variant": "tiny"}, "data": {"dataset": "refcoco"}})
