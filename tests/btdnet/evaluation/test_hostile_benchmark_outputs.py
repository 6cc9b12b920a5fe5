"""The benchmarks' outputs on hostile folders: a prediction folder holding files the benchmark
did not write, an interrupted run then a rerun, a report path that is a link, a folder or under
a file. Each is one ``benchmark.py: error:`` line before any work (exit 1), and nothing is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from btdnet.evaluation.prediction_folder import MARK, claim_prediction_folder
from btdnet.safe_write import UnsafeOutputError


def _argv(tmp_path: Path, checkpoint: Path, task: str) -> list[str]:
    from referring_fixtures import write_rrsisd_fixture

    if task == "referring":
        write_rrsisd_fixture(tmp_path / "data")
        dataset, split = "rrsisd", "test"
    else:
        from bicor.data.synthetic_seg import write_synthetic_seg
        from bicor.models import build_bicor

        torch.manual_seed(0)
        checkpoint = tmp_path / "seg_ckpt"
        build_bicor("tiny", num_classes=6, img_size=64, class_names=list("abcdef")).save_pretrained(
            checkpoint
        )
        write_synthetic_seg(tmp_path / "data", train=1, val=2, size=64)
        dataset, split = "synthetic_seg", "val"
    argv = ["--checkpoint", str(checkpoint), "--dataset", dataset, "--root", str(tmp_path / "data")]
    return [*argv, "--split", split, "--num-workers", "0"]


def _main(task: str):
    from bicor.benchmark_cli import main as seg
    from btdnet.evaluation.benchmark_cli import main as referring

    return referring if task == "referring" else seg


@pytest.mark.parametrize(("task", "name"), [("referring", "4-14.png"), ("seg", "val_00000.png")])
def test_a_file_the_benchmark_did_not_write_is_kept(tmp_path, capsys, checkpoint, task, name):
    argv = _argv(tmp_path, checkpoint, task)
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / name).write_bytes(b"the user's own file")
    (saved / "notes.txt").write_text("mine")
    assert _main(task)([*argv, "--save-predictions", str(saved)], prog="benchmark.py") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"benchmark.py: error: {saved / name}: exists and was not written by the benchmark; "
        "refusing to replace it (choose an empty folder, or move the file)"
    ]
    assert (saved / name).read_bytes() == b"the user's own file"
    assert sorted(p.name for p in saved.iterdir()) == sorted(["notes.txt", name])
    # an empty folder is claimed, then a rerun (as after an interruption) replaces its own files
    (saved / name).unlink()
    for _ in range(2):
        assert _main(task)([*argv, "--save-predictions", str(saved)], prog="benchmark.py") == 0
        assert (saved / name).read_bytes().startswith(b"\x89PNG")
        assert name in json.loads((saved / MARK).read_text())["files"]
    assert (saved / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("option", ["--json", "--markdown"])
@pytest.mark.parametrize("plant", ["link", "folder", "under a file"])
def test_a_report_path_that_cannot_be_written_is_refused_first(
    tmp_path, capsys, checkpoint, option, plant
):
    from btdnet.evaluation.benchmark_cli import main

    argv = _argv(tmp_path, checkpoint, "referring")
    kept = tmp_path / "kept.txt"
    kept.write_text("keep me")
    report = tmp_path / "report"
    if plant == "link":
        report.symlink_to(kept)
        problem = "is a symbolic link; refusing to write through it"
    elif plant == "folder":
        report.mkdir()
        problem = "exists and is not a regular file"
    else:
        report = kept / "report"
        problem = f"{kept} is not a folder"
    assert main([*argv, option, str(report)], prog="benchmark.py") == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"benchmark.py: error: {report}: ")
    assert problem in err[0]
    assert captured.out == ""  # refused before the model ran
    assert kept.read_text() == "keep me"


def test_claim_refuses_a_planted_link_and_a_forged_mark(tmp_path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "a.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(UnsafeOutputError, match=r"a\.png: is a symbolic link"):
        claim_prediction_folder(folder, ["a.png"])
    (folder / "a.png").unlink()
    (folder / MARK).write_text('{"files": "a.png"}')
    with pytest.raises(UnsafeOutputError, match=r"\.btdnet-predictions\.json: not a predictions"):
        claim_prediction_folder(folder, ["a.png"])
    (folder / MARK).unlink()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnsafeOutputError, match=r"file: exists and is not a folder"):
        claim_prediction_folder(tmp_path / "file", ["a.png"])
