"""The dataset check: its JSON report, its verdict and the command-line wrapper."""

from __future__ import annotations

import json
import os
import pickle
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from referring_fixtures import write_refsegrs_fixture, write_rrsisd_fixture

from btdnet.data.check import check_referring_dataset, format_report, is_usable, summary_line

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "check_dataset.py"


@pytest.fixture
def rrsisd(tmp_path):
    return write_rrsisd_fixture(tmp_path / "rrsisd_root")


@pytest.fixture
def refsegrs(tmp_path):
    return write_refsegrs_fixture(tmp_path / "RefSegRS")


def kinds(report):
    return sorted(p["kind"] for p in report["problems"])


def _targeted(samples: int) -> dict[str, int]:
    """The generalized counts of a classic set: every sample targeted, one object each."""
    return {"targeted": samples, "multi_target": 0, "no_target": 0}


def test_rrsisd_report_shape_and_values(rrsisd):
    report = check_referring_dataset("rrsisd", rrsisd["root"], progress=False)
    assert list(report) == ["dataset", "root", "splits", "problems"]
    assert report["dataset"] == "rrsisd" and report["root"] == str(rrsisd["root"])
    assert report["splits"] == {
        "train": {"samples": 3, "images": 2, **_targeted(3)},
        "val": {"samples": 1, "images": 1, **_targeted(1)},
        "test": {"samples": 1, "images": 1, **_targeted(1)},
    }
    assert kinds(report) == ["empty_mask", "size_mismatch"]
    mismatch = next(p for p in report["problems"] if p["kind"] == "size_mismatch")
    assert mismatch["file"] == str(rrsisd["image_dir"] / "00002.jpg")
    assert "image is 33x35 (HxW)" in mismatch["detail"] and "33x33" in mismatch["detail"]
    assert all(set(p) == {"kind", "file", "detail"} for p in report["problems"])
    assert json.loads(json.dumps(report)) == report
    assert is_usable(report)
    assert summary_line(report) == (
        f"rrsisd @ {rrsisd['root']}: train 3 samples/2 images, val 1 samples/1 images, "
        "test 1 samples/1 images; 2 problems (1 empty_mask, 1 size_mismatch): usable"
    )


def test_missing_and_corrupt_images_make_the_set_unusable(rrsisd):
    (rrsisd["image_dir"] / "00002.jpg").unlink()
    corrupt = rrsisd["image_dir"] / "00003.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    report = check_referring_dataset("rrsisd", rrsisd["root"], progress=False)
    assert kinds(report) == ["empty_mask", "missing_image", "unreadable_image"]
    unreadable = next(p for p in report["problems"] if p["kind"] == "unreadable_image")
    assert unreadable["file"] == str(corrupt)
    assert report["splits"]["train"] == {
        "samples": 2,
        "images": 1,
        **_targeted(2),
    }  # 2-12 lost its image
    assert not is_usable(report)
    assert summary_line(report).endswith("NOT usable")
    text = format_report(report)
    assert text.index("error: 1 x missing_image") < text.index("warning: 1 x empty_mask")


def test_every_problem_is_listed_at_once(rrsisd):
    refs = rrsisd["refs"]
    refs[0]["sentences"][1]["raw"] = refs[0]["sentences"][1]["sent"] = "   "
    refs[0]["sentences"][1]["tokens"] = []
    refs[2]["ann_id"] = 555
    refs[3]["sent_ids"] = [10]
    refs[3]["ref_id"] = 1
    refs[3]["sentences"][0]["sent_id"] = 10
    rrsisd["refs_path"].write_bytes(pickle.dumps(refs, protocol=2))
    report = check_referring_dataset("rrsisd", rrsisd["root"], progress=False)
    assert kinds(report) == [
        "bad_expression",
        "duplicate_id",
        "size_mismatch",
        "unknown_annotation",
    ]
    assert not is_usable(report)


def test_malicious_pickle_is_an_unsafe_file(rrsisd, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    rrsisd["refs_path"].write_bytes(pickle.dumps([Payload()]))
    report = check_referring_dataset("rrsisd", rrsisd["root"], progress=False)
    assert kinds(report) == ["unsafe_file"]
    assert report["problems"][0]["file"] == str(rrsisd["refs_path"])
    assert report["splits"] == {}
    assert not is_usable(report) and not marker.exists()


def test_missing_root_is_reported(tmp_path):
    report = check_referring_dataset("refsegrs", tmp_path / "nowhere", progress=False)
    assert kinds(report) == ["missing_file"] and not is_usable(report)


def test_refsegrs_report(refsegrs):
    raw = np.zeros((20, 19), dtype=np.uint8)
    Image.fromarray(raw).save(refsegrs["root"] / "masks" / "8.tif")  # wrong size, no foreground
    report = check_referring_dataset("refsegrs", refsegrs["root"], progress=False)
    assert report["splits"] == {
        "train": {"samples": 3, "images": 2, **_targeted(3)},
        "val": {"samples": 1, "images": 1, **_targeted(1)},
        "test": {"samples": 1, "images": 1, **_targeted(1)},
    }
    assert kinds(report) == ["empty_mask", "empty_mask", "size_mismatch"]
    empty = sorted(p["file"] for p in report["problems"] if p["kind"] == "empty_mask")
    assert empty == [str(refsegrs["root"] / "masks" / name) for name in ("23.tif", "8.tif")]
    assert is_usable(report)


def test_refsegrs_missing_mask(refsegrs):
    (refsegrs["root"] / "masks" / "17.tif").unlink()
    report = check_referring_dataset("refsegrs", refsegrs["root"], progress=False)
    assert kinds(report) == ["empty_mask", "missing_mask"]
    assert report["splits"]["train"]["samples"] == 2
    assert not is_usable(report)


def test_script_main_prints_the_report(rrsisd, capsys):
    main = runpy.run_path(str(SCRIPT))["main"]
    assert main(["--dataset", "rrsisd", "--root", str(rrsisd["root"])]) == 0
    out = capsys.readouterr().out
    assert "warning: 1 x size_mismatch" in out
    assert out.strip().splitlines()[-1].endswith("(1 empty_mask, 1 size_mismatch): usable")
    assert main(["--dataset", "refsegrs", "--root", str(rrsisd["root"]), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert kinds(report) == ["missing_file"]


def test_script_exit_status_and_json(refsegrs):
    (refsegrs["root"] / "images" / "5.tif").unlink()
    command = [sys.executable, str(SCRIPT), "--dataset", "refsegrs", "--json"]
    result = subprocess.run(
        [*command, "--root", str(refsegrs["root"])],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["dataset"] == "refsegrs"
    assert kinds(report) == ["empty_mask", "missing_image"]


def test_report_names_each_file_once_and_no_empty_meaning():
    from btdnet.data.check import format_report

    report = {
        "dataset": "vaihingen",
        "root": "/data/v",
        "splits": {},
        "problems": [
            {
                "kind": "unreadable_label",
                "file": "/data/v/gt/a.tif",
                "detail": "/data/v/gt/a.tif: expected a 3-channel 8-bit image, found 1 band(s)",
            }
        ],
    }
    text = format_report(report)
    assert "error: 1 x unreadable_label\n" in text and "()" not in text
    assert "    /data/v/gt/a.tif: expected a 3-channel 8-bit image, found 1 band(s)" in text
