"""Bugs an independent mutation audit showed the suite could miss, each planted here:
a replaced file's mode, a linked resume manifest, impossible or poisoned row parts, a run
folder named like a temporary, and a transposed class-id prediction."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from btdnet.errors import CheckpointError
from btdnet.safe_write import UnsafeOutputError, write_text_atomic


def test_a_replaced_file_keeps_its_own_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        private = tmp_path / "private.json"
        private.write_text("{}")
        private.chmod(0o600)
        write_text_atomic(private, '{"a": 1}')
        assert stat.S_IMODE(private.stat().st_mode) == 0o600  # not 0o644 from the umask
        fresh = write_text_atomic(tmp_path / "fresh.json", "{}")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_a_linked_manifest_is_refused_even_when_it_matches(tmp_path: Path) -> None:
    from btdnet.predict.scene.state import MANIFEST, prepare_parts

    manifest = {"model": "abc", "text": "the ship"}
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(manifest))
    parts = tmp_path / "scene.parts"
    parts.mkdir()
    (parts / MANIFEST).symlink_to(elsewhere)
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        prepare_parts(parts, manifest, resume=True)


def _part() -> tuple[dict[str, np.ndarray], dict]:
    arrays = {
        "core_mask": np.zeros((2, 3), bool),
        "counts": np.array([4, 1, 1], np.int64),
        "top": np.zeros((1, 3), np.float32),
        "bottom": np.zeros((1, 3), np.float32),
    }
    expected = {k: (a.shape, a.dtype.name) for k, a in arrays.items()}
    return arrays, expected


def test_a_reused_part_with_impossible_counts_or_bad_values_is_refused(tmp_path: Path) -> None:
    from btdnet.predict.scene.rows import PartError, check_part_arrays

    path = tmp_path / "row_000001.npz"
    arrays, expected = _part()
    check_part_arrays(path, arrays, expected)  # 4 tiles: 1 no-data, 1 absent
    arrays["counts"] = np.array([4, 3, 2], np.int64)  # none negative, but 3 + 2 > 4
    with pytest.raises(PartError, match=r"impossible tile counts \[4, 3, 2\]"):
        check_part_arrays(path, arrays, expected)
    for band in ("top", "bottom"):
        arrays, expected = _part()
        arrays[band][0, 1] = np.inf
        with pytest.raises(PartError, match=f"{band} holds non-finite values"):
            check_part_arrays(path, arrays, expected)


def test_a_run_folder_named_like_a_temporary_is_never_resumed(tmp_path: Path) -> None:
    from btdnet.engine.checkpoints import find_resume_checkpoint

    run = tmp_path / "run.tmp"
    last = run / "checkpoints" / "last"
    (last / "training_state").mkdir(parents=True)
    (last / "training_state" / "COMPLETE").write_text("")
    with pytest.raises(CheckpointError, match="temporary folder of an unfinished checkpoint"):
        find_resume_checkpoint(run)


def test_a_transposed_prediction_of_the_same_pixel_count_is_refused(tmp_path: Path) -> None:
    from bicor.prediction_files import PredictionFileError, read_class_prediction

    path = tmp_path / "tile.png"
    ids = np.arange(15, dtype=np.uint8).reshape(3, 5) % 6  # 3 rows, 5 columns, every class
    Image.fromarray(ids, mode="L").save(path)
    read = read_class_prediction(path, num_classes=6, size=(3, 5), palette=None)
    np.testing.assert_array_equal(read, ids.astype(np.int64))
    with pytest.raises(
        PredictionFileError, match=r"prediction is 3x5 \(HxW\) but its image is 5x3"
    ):
        read_class_prediction(path, num_classes=6, size=(5, 3), palette=None)
