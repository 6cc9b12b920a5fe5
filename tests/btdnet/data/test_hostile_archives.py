"""Referring data sets with hostile index files: polygon coordinates that are not finite or lie
far outside the image (the rasteriser would walk and allocate without end: NaN took the
machine's memory), image and RLE sizes above the pixel limit (a 10^6 x 10^6 no-target mask
asked numpy for 931 GiB). Each is one problem naming the file, or the image's own header size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from btdnet.data import build_referring_dataset, check_referring_dataset
from btdnet.data.errors import DatasetError


@pytest.fixture(scope="module")
def grefs_root(tmp_path_factory) -> Path:
    from btdnet.data.synthetic.grefs_writer import generate_synthetic_grefs

    root = tmp_path_factory.mktemp("grefs")
    generate_synthetic_grefs(root, train=2, val=1, test=1, size=64, show_progress=False)
    return root


def _copy_with(tmp_path: Path, source: Path, change) -> Path:
    import shutil

    root = tmp_path / "set"
    shutil.copytree(source, root)
    instances = json.loads((root / "instances.json").read_text())
    change(instances)
    (root / "instances.json").write_text(json.dumps(instances))
    return root


def test_a_polygon_far_outside_the_image_is_a_bad_annotation(tmp_path, grefs_root) -> None:
    def far(instances):
        instances["annotations"][0]["segmentation"] = [[1e5, 1.0, 5.0, 5.0, 3.0, 9.0]]

    root = _copy_with(tmp_path, grefs_root, far)
    report = check_referring_dataset("grefs", root)
    bad = [p for p in report["problems"] if p["kind"] == "bad_annotation"]
    assert len(bad) == 1 and bad[0]["file"] == str(root / "instances.json")
    assert "a polygon coordinate is not a finite number within +-128 pixels" in bad[0]["detail"]
    with pytest.raises(DatasetError, match=r"instances\.json: annotation .*: a polygon coordinate"):
        build_referring_dataset("grefs", root, "train", None, image_size=32)


def test_an_implausible_image_size_falls_back_to_the_header(tmp_path, grefs_root) -> None:
    def huge(instances):
        for image in instances["images"]:
            image["height"] = image["width"] = 10**6

    root = _copy_with(tmp_path, grefs_root, huge)
    checked = 0
    for split in ("train", "val", "test"):
        dataset = build_referring_dataset("grefs", root, split, None, image_size=32)
        for index, record in enumerate(dataset.records):
            if getattr(record, "no_target", False):
                assert dataset.original_mask(index).shape == (64, 64)  # the image's own size
                assert not dataset.original_mask(index).any()
                checked += 1
    assert checked > 0


def test_an_rle_above_the_pixel_limit_is_refused(tmp_path, monkeypatch) -> None:
    from referring_fixtures import write_rrsisd_fixture

    write_rrsisd_fixture(tmp_path / "data")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # the fixture's 33x33 masks are above
    report = check_referring_dataset("rrsisd", tmp_path / "data")
    bad = [p for p in report["problems"] if p["kind"] == "bad_annotation"]
    assert bad and all(p["file"].endswith("instances.json") for p in bad)
    assert "RLE size 33x33 has more pixels than the limit of 100" in bad[0]["detail"]
