"""make_synthetic never destroys a data set it did not write; its errors are one line."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from btdnet.data.synthetic import generate_synthetic_rrsisd
from btdnet.data.synthetic.writer import OutputFolderError

REPO = Path(__file__).resolve().parents[3]
TINY = {"train": 2, "val": 0, "test": 0, "size": 64, "show_progress": False}


def _real_rrsisd(root: Path) -> dict[Path, bytes]:
    """A stand-in for a downloaded RRSIS-D root: same file names, other bytes."""
    files = {
        root / "rrsisd" / "refs(unc).p": b"real refs",
        root / "rrsisd" / "instances.json": b'{"real": true}',
        **{root / "images" / "rrsisd" / "JPEGImages" / f"{i:05d}.jpg": b"jpg" for i in range(1, 6)},
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_foreign_dataset_is_refused_untouched(tmp_path) -> None:
    files = _real_rrsisd(tmp_path)
    with pytest.raises(OutputFolderError, match="not written by the synthetic generator"):
        generate_synthetic_rrsisd(tmp_path, **TINY)
    assert all(path.read_bytes() == data for path, data in files.items())


def test_overwrite_writes_own_names_and_deletes_nothing(tmp_path) -> None:
    files = _real_rrsisd(tmp_path)
    generate_synthetic_rrsisd(tmp_path, overwrite=True, **TINY)
    images = tmp_path / "images" / "rrsisd" / "JPEGImages"
    assert sorted(p.name for p in images.iterdir()) == [f"{i:05d}.jpg" for i in range(1, 6)]
    for i in (3, 4, 5):  # beyond the 2 generated: the data set's own, kept as they were
        assert (images / f"{i:05d}.jpg").read_bytes() == files[images / f"{i:05d}.jpg"]


def test_own_folder_is_regenerated_and_its_surplus_removed(tmp_path) -> None:
    out = tmp_path / "syn"
    generate_synthetic_rrsisd(out, **{**TINY, "train": 3})
    generate_synthetic_rrsisd(out, **TINY)
    images = out / "images" / "rrsisd" / "JPEGImages"
    assert sorted(p.name for p in images.iterdir()) == ["00001.jpg", "00002.jpg"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--train", "-1"], 2, "train must be a non-negative number"),
        (["--size", "8"], 2, "size must be an integer of at least 64"),
        (["--train", "1", "--val", "0", "--test", "0", "--size", "64"], 1, "--overwrite"),
    ],
)
def test_script_errors_are_one_line(tmp_path, capsys, args, code, message) -> None:
    _real_rrsisd(tmp_path / "real")
    script = runpy.run_path(str(REPO / "scripts" / "make_synthetic.py"), run_name="script")
    argv = ["--out", str(tmp_path / "real"), "--no-progress", *args]
    assert script["main"](argv) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("make_synthetic.py: error: ")
    assert message in lines[0]
