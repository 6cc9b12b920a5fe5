"""ISPRS Vaihingen / Potsdam in every layout the official archives unpack to.

The label archives hold bare .tif files: unzipped into one folder they sit at the root beside
top/ or 2_Ortho_RGB/; many unzip tools make a folder named after each archive instead.
"""

from __future__ import annotations

import runpy
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from closed_set_fixtures import write_potsdam_fixture, write_vaihingen_fixture

from bicor.data import build_closed_set_dataset, check_closed_set_dataset, is_usable

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_dataset.py"
TWO_TILES = {"1": (32, 40), "3": (24, 32)}  # both GeoSeg train tiles


def _build(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the fixture lacks most tiles
        return build_closed_set_dataset(*args, **kwargs)


@pytest.mark.parametrize("layout", ["root", "archive"])
def test_vaihingen_labels_where_the_archives_put_them(tmp_path: Path, layout: str) -> None:
    written = write_vaihingen_fixture(tmp_path, TWO_TILES, layout=layout)
    assert not (tmp_path / "ground_truth").exists()
    for eroded, key in ((False, "ids"), (True, "eroded_ids")):
        dataset = _build("vaihingen", tmp_path, "train", mode="eval", eroded_labels=eroded)
        assert dataset.tile_ids == ["top_mosaic_09cm_area1", "top_mosaic_09cm_area3"]
        np.testing.assert_array_equal(dataset[1]["mask"].numpy(), written["3"][key])
    report = check_closed_set_dataset("vaihingen", tmp_path, progress=False)
    assert report["splits"]["train"]["samples"] == 2
    assert not [p for p in report["problems"] if p["kind"] == "missing_label"]
    folder = "." if layout == "root" else "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE"
    assert report["layout"]["label"] == {folder: 2}
    assert report["layout"]["image"] == {"top": 2}


def test_potsdam_labels_at_the_root(tmp_path: Path) -> None:
    written = write_potsdam_fixture(tmp_path, ("2_11", "2_13"), (32, 40), layout="root")
    test = _build("potsdam", tmp_path, "test", mode="eval")  # eroded labels by default
    assert test.tile_ids == ["top_potsdam_2_13"]
    np.testing.assert_array_equal(test[0]["mask"].numpy(), written["2_13"]["eroded_ids"])
    report = check_closed_set_dataset("potsdam", tmp_path, progress=False)
    assert report["layout"]["eroded_label"] == {".": 2}
    assert report["splits"]["test"]["samples"] == 1


@pytest.mark.parametrize("name", ["vaihingen", "potsdam"])
def test_check_script_accepts_both_layouts(tmp_path: Path, name: str, capsys) -> None:
    main = runpy.run_path(str(SCRIPT))["main"]
    for layout in ("documented", "root"):
        root = tmp_path / layout
        if name == "vaihingen":
            write_vaihingen_fixture(root, TWO_TILES, layout=layout)
        else:
            write_potsdam_fixture(root, ("2_11", "2_13"), (24, 32), layout=layout)
        assert main(["--dataset", name, "--root", str(root)]) == 0, layout
        out = capsys.readouterr().out
        assert "files:" in out and "labels from" in out


def test_documented_folder_wins_and_the_report_says_so(tmp_path: Path) -> None:
    written = write_vaihingen_fixture(tmp_path, TWO_TILES)
    # a stale copy of tile 1's label at the root (different content): must not be used
    shutil.copy(
        tmp_path / "ground_truth" / "top_mosaic_09cm_area3.tif",
        tmp_path / "top_mosaic_09cm_area1.tif",
    )
    dataset = _build("vaihingen", tmp_path, "train", mode="eval", eroded_labels=False)
    np.testing.assert_array_equal(dataset[0]["mask"].numpy(), written["1"]["ids"])
    report = check_closed_set_dataset("vaihingen", tmp_path, progress=False)
    assert report["layout"]["label"] == {"ground_truth": 2}
    assert report["layout"]["shadowed"] == {"label": 1}


def test_missing_label_names_where_it_looked_and_the_near_miss(tmp_path: Path) -> None:
    write_vaihingen_fixture(tmp_path, TWO_TILES)
    misplaced = tmp_path / "downloads" / "labels" / "top_mosaic_09cm_area3_noBoundary.tif"
    misplaced.parent.mkdir(parents=True)
    (tmp_path / "ground_truth_eroded" / misplaced.name).rename(misplaced)
    report = check_closed_set_dataset("vaihingen", tmp_path, progress=False)
    [problem] = [p for p in report["problems"] if p["kind"] == "missing_label"]
    assert problem["file"] == str(tmp_path / "ground_truth_eroded" / misplaced.name)
    detail = problem["detail"]
    assert detail.startswith("tile 3: eroded label file top_mosaic_09cm_area3_noBoundary.tif")
    assert "looked in ground_truth_eroded/, the root, " in detail
    assert "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE/" in detail
    assert str(misplaced) in detail
    assert is_usable(report)  # tile 1 is complete; the other is skipped
    dataset = _build("vaihingen", tmp_path, "train", mode="eval")
    assert dataset.tile_ids == ["top_mosaic_09cm_area1"]
    [missing] = [m for m in dataset.missing if m["kind"] == "missing_label"]
    assert str(misplaced) in missing["detail"]
