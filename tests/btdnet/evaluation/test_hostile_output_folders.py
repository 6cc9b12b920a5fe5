"""The benchmarks' and the heatmaps' output folders: a folder that is a link to another place
is refused with one line before anything runs, and nothing is written there."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def _linked_folder(tmp_path: Path) -> tuple[Path, Path]:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "saved"
    link.symlink_to(elsewhere, target_is_directory=True)
    return link, elsewhere


@pytest.mark.parametrize("task", ["referring", "seg"])
def test_save_predictions_into_a_link_is_refused(tmp_path, capsys, checkpoint, task) -> None:
    from bicor.benchmark_cli import main as seg
    from btdnet.evaluation.benchmark_cli import main as referring

    link, elsewhere = _linked_folder(tmp_path)
    dataset = "rrsisd" if task == "referring" else "synthetic_seg"
    argv = ["--checkpoint", str(checkpoint), "--dataset", dataset, "--root", str(tmp_path)]
    argv += ["--split", "val", "--save-predictions", str(link)]
    status = (referring if task == "referring" else seg)(argv, prog="benchmark.py")
    assert status == 1 and list(elsewhere.iterdir()) == []
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"benchmark.py: error: {link}: is a symbolic link; refusing to write into it "
        "(remove the link)"
    ]


def test_heatmaps_into_a_link_are_refused(tmp_path) -> None:
    from bicor.heatmaps import save_heatmaps
    from btdnet.safe_write import UnsafeOutputError

    link, elsewhere = _linked_folder(tmp_path)
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        save_heatmaps([torch.zeros(1, 2, 4, 4)], link, class_names=["a", "b"])
    assert list(elsewhere.iterdir()) == []
