"""Checkpoint commits killed between any two steps leave a resumable, consistent checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from btdnet.engine import NonFiniteLossError, Trainer
from btdnet.engine import checkpoints as ckpt
from tests.toy_task import ToyTask


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no cleanup handler catches it."""


def _write(root: Path, name: str, step: int, *, best: bool = False, commit: bool = True) -> Path:
    tmp = ckpt.begin(root, name)
    (tmp / "weights.json").write_text(json.dumps({"step": step}))
    ckpt.write_json({"global_step": step}, tmp / ckpt.STATE_DIR / ckpt.PROGRESS_FILE)
    if not commit:
        return tmp
    return ckpt.commit(root, tmp, best=best, keep=10)


def _consistent_step(folder: Path) -> int:
    """The step a checkpoint holds, after checking its weights and progress agree."""
    assert not ckpt.is_temporary(folder), folder
    weights = json.loads((folder / "weights.json").read_text())["step"]
    progress = json.loads((folder / ckpt.STATE_DIR / ckpt.PROGRESS_FILE).read_text())
    assert weights == progress["global_step"]
    return weights


def _count_primitives(monkeypatch: pytest.MonkeyPatch, kill_at: int | None) -> list[str]:
    """Count (and at call ``kill_at`` refuse) every file-system step a commit takes."""
    calls: list[str] = []
    for owner, name in ((os, "replace"), (os, "symlink"), (os, "fsync"), (shutil, "rmtree")):
        real = getattr(owner, name)

        def wrapped(*args, _real=real, _name=name, **kwargs):
            if kill_at is not None and len(calls) == kill_at:
                raise Killed(_name)
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapped)
    return calls


@pytest.mark.parametrize("resave", [False, True], ids=["new-name", "re-save-existing-name"])
def test_kill_between_every_two_commit_steps(tmp_path, monkeypatch, resave) -> None:
    # Probe how many steps one commit takes.
    probe = tmp_path / "probe" / "checkpoints"
    _write(probe, "epoch-0001", 5, best=True)
    if resave:
        _write(probe, "epoch-0002", 9)
    tmp = _write(probe, "epoch-0002", 10, commit=False)
    calls = _count_primitives(monkeypatch, None)
    ckpt.commit(probe, tmp, best=False, keep=10)
    monkeypatch.undo()
    assert len(calls) >= 4

    for kill_at in range(len(calls) + 1):
        run = tmp_path / f"kill-{kill_at}"
        root = run / "checkpoints"
        _write(root, "epoch-0001", 5, best=True)
        if resave:  # a later checkpoint of the same name (the run resumed from epoch 1)
            _write(root, "epoch-0002", 9)
        tmp = _write(root, "epoch-0002", 10, commit=False)
        _count_primitives(monkeypatch, kill_at)
        with contextlib.suppress(Killed):
            ckpt.commit(root, tmp, best=False, keep=10)
        monkeypatch.undo()
        found = ckpt.find_resume_checkpoint(run)
        assert _consistent_step(found) in {5, 9, 10}, (kill_at, found)
        assert _consistent_step((root / "best").resolve()) == 5
        # The next save recovers and leaves no temporary folder behind.
        _write(root, "epoch-0003", 15)
        assert _consistent_step(ckpt.find_resume_checkpoint(run)) == 15
        assert not [p for p in root.iterdir() if ckpt.is_temporary(p)]


def test_complete_temporary_folder_is_never_resumed(tmp_path) -> None:
    root = tmp_path / "checkpoints"
    _write(root, "epoch-0001", 5, best=True)
    tmp = _write(root, "epoch-0002", 10, commit=False)
    (tmp / ckpt.STATE_DIR / ckpt.COMPLETE_MARK).write_text("ok\n")  # the old commit's order
    (root / "last").unlink()  # and the link gone, as after a kill mid-swap
    assert ckpt.find_resume_checkpoint(tmp_path).name == "epoch-0001"
    with pytest.raises(ckpt.CheckpointError, match="temporary"):
        ckpt.find_resume_checkpoint(tmp)


def test_a_checkpoint_without_its_completion_mark_is_never_resumed(tmp_path) -> None:
    """A folder with training_state/ but no COMPLETE (copied half-way, its mark lost) is not
    a checkpoint to resume from, even when ``last`` names it and it holds the furthest step."""
    root = tmp_path / "checkpoints"
    _write(root, "epoch-0001", 5)
    unmarked = _write(root, "epoch-0002", 10)
    (unmarked / ckpt.STATE_DIR / ckpt.COMPLETE_MARK).unlink()
    assert (root / "last").resolve() == unmarked.resolve()
    assert ckpt.find_resume_checkpoint(tmp_path).name == "epoch-0001"
    assert [p.name for p in ckpt.complete_checkpoints(root)] == ["epoch-0001"]
    with pytest.raises(ckpt.CheckpointError, match="no complete checkpoint"):
        ckpt.find_resume_checkpoint(unmarked)


def test_fallback_picks_the_furthest_checkpoint_not_the_last_name(tmp_path) -> None:
    root = tmp_path / "checkpoints"
    _write(root, "step-0000006", 6)
    _write(root, "epoch-0002", 10)
    (root / "last").unlink()
    assert ckpt.find_resume_checkpoint(tmp_path).name == "epoch-0002"


class _GradBomb(torch.autograd.Function):
    """Identity forward, infinite gradient backward: a finite loss whose update overflows."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


class _DivergingTask(ToyTask):
    def __init__(self, bomb_at: int) -> None:
        super().__init__()
        self.bomb_at = bomb_at

    def compute_loss(self, model, batch):
        loss, terms = super().compute_loss(model, batch)
        if self.calls == self.bomb_at:
            loss = _GradBomb.apply(loss)
        return loss, terms


@pytest.mark.parametrize("clip", [1.0, None], ids=["clipped", "unclipped"])
def test_diverged_update_is_never_saved(tmp_path, clip) -> None:
    """The overflow is in the last step of epoch 1: the epoch-end save must not happen."""
    config = {
        "seed": 3,
        "data": {"n": 40},
        "train": {
            "epochs": 2,
            "batch_size": 8,
            "lr": 0.05,
            "trackers": "none",
            "clip_grad_norm": clip,
        },
    }
    trainer = Trainer(_DivergingTask(bomb_at=5), config, tmp_path, show_progress=False)
    with pytest.raises(NonFiniteLossError, match=r"non-finite gradients.*none written yet"):
        trainer.fit()
    root = tmp_path / "checkpoints"
    assert not root.exists() or not [p for p in root.iterdir() if not ckpt.is_temporary(p)]


def test_non_finite_weights_are_never_saved(tmp_path) -> None:
    config = {"seed": 3, "data": {"n": 40}, "train": {"epochs": 1, "trackers": "none"}}

    class PoisonedSave(ToyTask):
        def evaluate(self, model, dataloader, accelerator):
            with torch.no_grad():  # an overflow the step checks did not see
                next(model.parameters()).fill_(float("inf"))
            return super().evaluate(model, dataloader, accelerator)

    trainer = Trainer(PoisonedSave(), config, tmp_path, show_progress=False)
    with pytest.raises(NonFiniteLossError, match=r"non-finite weights \(net\.0\.weight"):
        trainer.fit()
    assert not (tmp_path / "checkpoints" / "last").exists()
