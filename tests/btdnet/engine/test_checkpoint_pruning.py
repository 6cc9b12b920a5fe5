"""Checkpoint pruning by count, ``last``/``best`` protection, and links into unfinished saves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from btdnet.engine import checkpoints as ckpt


def save(root: Path, name: str, step: int, *, best: bool = False, keep: int = 2) -> Path:
    tmp = ckpt.begin(root, name)
    ckpt.write_json({"global_step": step}, tmp / ckpt.STATE_DIR / ckpt.PROGRESS_FILE)
    return ckpt.commit(root, tmp, best=best, keep=keep)


def names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_keeps_only_the_newest_when_fewer_are_kept_than_written(tmp_path) -> None:
    root = tmp_path / "checkpoints"
    for epoch in range(1, 6):
        save(root, f"epoch-{epoch:04d}", 10 * epoch, best=True, keep=2)
    assert names(root) == ["best", "epoch-0004", "epoch-0005", "last"]
    assert (root / "last").resolve().name == "epoch-0005"


def test_best_is_kept_beyond_the_count(tmp_path) -> None:
    root = tmp_path / "checkpoints"
    save(root, "epoch-0001", 10, best=True, keep=2)
    for epoch in range(2, 6):
        save(root, f"epoch-{epoch:04d}", 10 * epoch, keep=2)
    # complete: 1 (best), 4, 5; epochs 2 and 3 pruned although 1 is older
    assert names(root) == ["best", "epoch-0001", "epoch-0004", "epoch-0005", "last"]
    assert (root / "best").resolve().name == "epoch-0001"


def test_keep_one_keeps_the_last(tmp_path) -> None:
    root = tmp_path / "checkpoints"
    for epoch in range(1, 4):
        save(root, f"epoch-{epoch:04d}", epoch, keep=1)
    assert names(root) == ["epoch-0003", "last"]


def test_stale_temporary_folders_are_removed_by_the_next_save(tmp_path) -> None:
    root = tmp_path / "checkpoints"
    save(root, "epoch-0001", 1, keep=5)
    (root / "epoch-0009.tmp" / ckpt.STATE_DIR).mkdir(parents=True)
    (root / "epoch-0008.old").mkdir()
    save(root, "epoch-0002", 2, keep=5)
    assert names(root) == ["epoch-0001", "epoch-0002", "last"]


def test_last_link_into_a_temporary_folder_is_not_resumed(tmp_path) -> None:
    """``last`` points into ``*.tmp`` (a complete mark there: the old commit order): resume
    must not take it, through the link or by the folder scan."""
    root = tmp_path / "checkpoints"
    save(root, "epoch-0001", 10, keep=5)
    tmp = ckpt.begin(root, "epoch-0002")
    ckpt.write_json({"global_step": 20}, tmp / ckpt.STATE_DIR / ckpt.PROGRESS_FILE)
    (tmp / ckpt.STATE_DIR / ckpt.COMPLETE_MARK).write_text("ok\n")
    (root / "last").unlink()
    (root / "last").symlink_to("epoch-0002.tmp")
    assert ckpt.find_resume_checkpoint(tmp_path).name == "epoch-0001"
    assert ckpt.find_resume_checkpoint(root).name == "epoch-0001"
    (root / "last").unlink()
    (root / "last").symlink_to("epoch-0002.old")
    tmp.rename(root / "epoch-0002.old")
    assert ckpt.find_resume_checkpoint(tmp_path).name == "epoch-0001"


def test_resume_falls_back_to_the_furthest_step_with_unreadable_progress_last(tmp_path):
    root = tmp_path / "checkpoints"
    save(root, "a-late-name", 5, keep=5)
    save(root, "b-early-name", 50, keep=5)
    broken = save(root, "c-broken", 7, keep=5)
    (broken / ckpt.STATE_DIR / ckpt.PROGRESS_FILE).write_text("{not json")
    (root / "last").unlink()
    assert ckpt.find_resume_checkpoint(tmp_path).name == "b-early-name"
    progress = json.loads((root / "b-early-name" / ckpt.STATE_DIR / "progress.json").read_text())
    assert progress == {"global_step": 50}


def test_nothing_complete_is_an_error_naming_the_folder(tmp_path) -> None:
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ckpt.CheckpointError, match="no complete checkpoint"):
        ckpt.find_resume_checkpoint(tmp_path)


def test_a_save_without_best_leaves_best_where_it_was(tmp_path) -> None:
    root = tmp_path / "checkpoints"
    save(root, "epoch-0001", 10, best=True, keep=5)
    save(root, "epoch-0002", 20, best=False, keep=5)
    assert (root / "best").resolve().name == "epoch-0001"
    assert (root / "last").resolve().name == "epoch-0002"
    assert ckpt.checkpoint_step(root / "epoch-0002") == 20
    (root / "epoch-0002" / ckpt.STATE_DIR / ckpt.PROGRESS_FILE).write_text("{}")
    assert ckpt.checkpoint_step(root / "epoch-0002") == -1  # unreadable progress sorts first
    assert [p.name for p in ckpt.complete_checkpoints(root)] == ["epoch-0002", "epoch-0001"]
    assert ckpt.complete_checkpoints(root / "nothing") == []


def test_begin_starts_from_an_empty_temporary_folder(tmp_path) -> None:
    root = tmp_path / "checkpoints"
    tmp = ckpt.begin(root, "epoch-0001")
    (tmp / "half-written.bin").write_bytes(b"x")
    again = ckpt.begin(root, "epoch-0001")
    assert again == root / "epoch-0001.tmp"
    assert sorted(p.name for p in again.iterdir()) == [ckpt.STATE_DIR]
    assert list((again / ckpt.STATE_DIR).iterdir()) == []


def test_rng_states_survive_a_json_round_trip(tmp_path) -> None:
    import random

    import numpy as np
    import torch

    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    path = tmp_path / "rng-0.json"
    ckpt.write_json(ckpt.capture_rng(), path)
    first = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    ckpt.restore_rng(ckpt.read_json(path))
    again = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    assert again == first


def test_state_files_are_read_as_tensors_only_with_one_line_errors(tmp_path) -> None:
    import torch

    state = {"step": torch.tensor([4]), "lr": [0.1, 0.2]}
    ckpt.save_tensors(state, tmp_path / "optimizer.pt")
    loaded = ckpt.load_tensors(tmp_path / "optimizer.pt")
    assert loaded["step"].tolist() == [4] and loaded["lr"] == [0.1, 0.2]
    with pytest.raises(ckpt.CheckpointError, match=r"scheduler\.pt: missing from the checkpoint"):
        ckpt.load_tensors(tmp_path / "scheduler.pt")
    torch.save({"object": Path("x")}, tmp_path / "evil.pt")  # not tensors: refused
    with pytest.raises(ckpt.CheckpointError, match=r"evil\.pt: cannot be read safely"):
        ckpt.load_tensors(tmp_path / "evil.pt")
    with pytest.raises(ckpt.CheckpointError, match=r"progress\.json: missing"):
        ckpt.read_json(tmp_path / "progress.json")
    (tmp_path / "progress.json").write_text("{broken")
    with pytest.raises(ckpt.CheckpointError, match=r"progress\.json: not valid JSON"):
        ckpt.read_json(tmp_path / "progress.json")
    ckpt.write_json({"b": 1, "a": 2}, tmp_path / "sorted.json")
    assert (tmp_path / "sorted.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}'
