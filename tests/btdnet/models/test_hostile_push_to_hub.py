"""``scripts/push_to_hub.py`` on hostile arguments: a --dry-run folder that is a link or a
file, a license that would inject YAML keys into the card, a repo id that is a path."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PREFIX = "push_to_hub.py: error: "


def _run(monkeypatch, capsys, *args) -> tuple[int, list[str]]:
    monkeypatch.setattr(sys, "argv", ["push_to_hub.py", *map(str, args)])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(REPO / "scripts" / "push_to_hub.py"), run_name="__main__")
    return stopped.value.code, capsys.readouterr().err.strip().splitlines()


def test_dry_run_into_a_link_is_refused_and_the_target_untouched(
    tmp_path, monkeypatch, capsys, checkpoint
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "staged"
    link.symlink_to(elsewhere, target_is_directory=True)
    status, err = _run(
        monkeypatch, capsys, "--checkpoint", checkpoint, "--repo-id", "u/m", "--dry-run", link
    )
    assert status == 2 and list(elsewhere.iterdir()) == []
    assert err == [f"{PREFIX}--dry-run {link}: is a symbolic link; give a new or empty folder"]


def test_dry_run_into_a_file_is_one_line(tmp_path, monkeypatch, capsys, checkpoint) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    status, err = _run(
        monkeypatch, capsys, "--checkpoint", checkpoint, "--repo-id", "u/m", "--dry-run", target
    )
    assert (status, target.read_text()) == (2, "mine")
    assert err == [
        f"{PREFIX}--dry-run {target}: is a file, not a folder; give a new or empty folder"
    ]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--license", "mit\npipeline_tag: evil"),
        ("--license", "mit # x"),
        ("--license", ""),
        ("--repo-id", "../../x"),
        ("--repo-id", "u/m@main"),
    ],
)
def test_license_and_repo_id_are_checked_before_the_card(
    tmp_path, monkeypatch, capsys, checkpoint, option, value
) -> None:
    staged = tmp_path / "staged"
    args = {"--license": "mit", "--repo-id": "u/m", option: value}
    status, err = _run(
        monkeypatch,
        capsys,
        "--checkpoint",
        checkpoint,
        "--dry-run",
        staged,
        *[item for pair in args.items() for item in pair],
    )
    assert status == 2 and not staged.exists()
    assert len(err) == 1 and err[0].startswith(f"{PREFIX}{option} {value!r}: not a")


def test_a_plain_license_still_stages_the_card(tmp_path, monkeypatch, capsys, checkpoint) -> None:
    staged = tmp_path / "staged"
    status, _ = _run(
        monkeypatch,
        capsys,
        "--checkpoint",
        checkpoint,
        "--repo-id",
        "u/m",
        "--license",
        "cc-by-nc-4.0",
        "--dry-run",
        staged,
    )
    assert status == 0
    front = (staged / "README.md").read_text().split("---")[1]
    assert "license: cc-by-nc-4.0" in front and "pipeline_tag: evil" not in front


def test_alias_bomb_in_the_run_config_is_one_line(tmp_path) -> None:
    from btdnet.models.model_card import read_run
    from btdnet.models.serialization import CheckpointError

    run = tmp_path / "run"
    run.mkdir()
    levels = "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
    )
    (run / "config.yaml").write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + levels)
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
    with pytest.raises(CheckpointError, match=r"unreadable run files \(the document expands"):
        read_run(run)
