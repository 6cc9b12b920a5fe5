"""The closed-set registry (``bicor.registry``) is the list every other place follows: the
task, the builder, the check, the per-data-set tables; importing it loads no torch."""

from __future__ import annotations

import pytest

from bicor.data.palettes import PALETTES
from bicor.registry import CLOSED_SET_DATASETS, ISPRS_DATASETS, SEG_DATASETS, SYNTHETIC_SEG
from bicor.task import DATASETS
from bicor.tta import AUTHORS_TTA
from tests.launch import run_python


def test_the_task_and_the_tables_follow_the_registry():
    assert DATASETS == SEG_DATASETS == (SYNTHETIC_SEG, *CLOSED_SET_DATASETS)
    assert set(ISPRS_DATASETS) < set(CLOSED_SET_DATASETS)
    assert set(PALETTES) == set(CLOSED_SET_DATASETS)
    assert set(AUTHORS_TTA) == set(CLOSED_SET_DATASETS)


@pytest.mark.parametrize("name", CLOSED_SET_DATASETS)
def test_builder_and_check_accept_every_registered_name(name, tmp_path):
    from bicor.data import build_closed_set_dataset, check_closed_set_dataset

    report = check_closed_set_dataset(name, tmp_path / "absent")
    assert report["dataset"] == name  # a missing root is a report, not "unknown data set"
    with pytest.raises(Exception) as error:
        build_closed_set_dataset(name, tmp_path / "absent", "train")
    assert "unknown closed-set dataset" not in str(error.value)


def test_the_registry_imports_no_torch():
    code = "import sys, bicor.registry, btdnet.registry; print('torch' in sys.modules)"
    out = run_python(["-c", code])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
