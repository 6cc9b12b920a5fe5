"""Annotation files nested beyond the JSON parser's stack: one problem naming the file (the
check's exit 1), never a RecursionError; a broken synthetic classes file names itself."""

from __future__ import annotations

import json

import pytest
from referring_fixtures import write_rrsisd_fixture

from bicor.data.errors import ClosedSetDataError
from bicor.data.synthetic_seg import SyntheticSegDataset
from btdnet.data.check import check_referring_dataset
from btdnet.data.errors import DatasetError
from btdnet.data.negatives import image_categories_from_instances

DEEP = "[" * 200_000 + "]" * 200_000


def test_deeply_nested_instances_are_an_unreadable_file(tmp_path) -> None:
    fixture = write_rrsisd_fixture(tmp_path / "rrsisd_root")
    fixture["instances_path"].write_text(DEEP)
    report = check_referring_dataset("rrsisd", fixture["root"])
    (problem,) = [p for p in report["problems"] if p["kind"] == "unreadable_file"]
    assert problem["file"] == str(fixture["instances_path"])
    assert problem["detail"].startswith("not valid JSON (maximum recursion depth exceeded")


def test_deeply_nested_instances_for_negatives_name_the_file(tmp_path) -> None:
    path = tmp_path / "instances.json"
    path.write_text(DEEP)
    with pytest.raises(DatasetError, match=r"instances\.json: cannot read the annotations"):
        image_categories_from_instances(path)


@pytest.mark.parametrize("text", [DEEP, "{not json", json.dumps({"no": "classes"}), "[1, 2]"])
def test_broken_synthetic_classes_file_names_itself(tmp_path, text) -> None:
    (tmp_path / "classes.json").write_text(text)
    (tmp_path / "train" / "images").mkdir(parents=True)
    with pytest.raises(ClosedSetDataError, match=r"classes\.json: not a classes file"):
        SyntheticSegDataset(tmp_path, "train")
