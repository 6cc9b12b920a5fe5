"""btdnet/safe_write.py under attack: links planted before and during a write, folders in the
way, and failures in the middle of one (the old file survives, nothing is left behind)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from btdnet import safe_write
from btdnet.safe_write import (
    UnsafeOutputError,
    atomic_output,
    atomic_outputs,
    check_output_folder,
    check_output_path,
    write_text_atomic,
)


class Failure(Exception):
    """Stands for a writer that fails half-way."""


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_plain_write_replaces_the_file_and_leaves_nothing_else(tmp_path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    assert write_text_atomic(target, "new") == target
    assert target.read_text() == "new" and listing(tmp_path) == ["out.json"]


def test_link_as_destination_is_refused_and_its_target_untouched(tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.txt").symlink_to(victim)
    with pytest.raises(UnsafeOutputError, match=r"out\.txt: is a symbolic link"):
        write_text_atomic(tmp_path / "out.txt", "payload")
    assert victim.read_text() == "precious"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "nowhere.txt")
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        check_output_path(dangling)
    assert not (tmp_path / "nowhere.txt").exists()


def test_folder_as_destination_is_refused(tmp_path) -> None:
    (tmp_path / "out.txt").mkdir()
    with pytest.raises(UnsafeOutputError, match="not a regular file"):
        write_text_atomic(tmp_path / "out.txt", "x")
    assert (tmp_path / "out.txt").is_dir()
    assert check_output_path(tmp_path / "absent.txt") == tmp_path / "absent.txt"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_a_named_pipe_as_destination_is_refused_and_kept(tmp_path) -> None:
    # neither a file nor a folder: replacing it would silently break what reads from it
    pipe = tmp_path / "out.json"
    os.mkfifo(pipe)
    with pytest.raises(UnsafeOutputError, match=r"out\.json: exists and is not a regular file"):
        check_output_path(pipe)
    with pytest.raises(UnsafeOutputError, match="not a regular file"):
        write_text_atomic(pipe, "{}")
    assert pipe.is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_link_planted_while_writing_is_refused(tmp_path) -> None:
    """Between the first check and the rename an attacker puts a link where the output goes:
    the rename would replace the link itself, but the tool must not even do that."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out.txt"
    with pytest.raises(UnsafeOutputError, match="symbolic link"), atomic_output(target) as tmp:
        tmp.write_text("payload")
        target.symlink_to(victim)  # planted after the first check
    assert victim.read_text() == "precious"
    assert target.is_symlink() and listing(tmp_path) == ["out.txt", "victim.txt"]


def test_link_planted_at_the_temporary_name_is_not_written_through(tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out.txt"
    planted = tmp_path / f".out.tmp-{os.getpid()}.txt"
    planted.symlink_to(victim)
    write_text_atomic(target, "payload")
    assert victim.read_text() == "precious" and target.read_text() == "payload"
    assert not target.is_symlink() and listing(tmp_path) == ["out.txt", "victim.txt"]


def test_link_planted_between_the_check_and_the_rename(tmp_path, monkeypatch) -> None:
    """The last check runs, then the link appears just before ``os.replace``: the rename then
    replaces the link (a name in our folder), never its target."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out.txt"
    real_replace = os.replace

    def plant_then_replace(source, destination):
        if Path(destination) == target and not target.is_symlink():
            target.symlink_to(victim)
        return real_replace(source, destination)

    monkeypatch.setattr(safe_write.os, "replace", plant_then_replace)
    write_text_atomic(target, "payload")
    assert victim.read_text() == "precious"
    assert not target.is_symlink() and target.read_text() == "payload"


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(Failure), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise Failure
    assert target.read_text() == "old" and listing(tmp_path) == ["out.txt"]
    # also when there was no file before
    with pytest.raises(Failure), atomic_output(tmp_path / "new.txt") as tmp:
        tmp.write_text("half")
        raise Failure
    assert listing(tmp_path) == ["out.txt"]


def test_keep_on_error_renames_what_was_written(tmp_path) -> None:
    target = tmp_path / "log.jsonl"
    target.write_text("old\n")
    with pytest.raises(Failure), atomic_output(target, keep_on_error=True) as tmp:
        tmp.write_text("line 1\n")
        raise Failure
    assert target.read_text() == "line 1\n" and listing(tmp_path) == ["log.jsonl"]
    # nothing written: the old file stays
    with pytest.raises(Failure), atomic_output(target, keep_on_error=True):
        raise Failure
    assert target.read_text() == "line 1\n"


def test_keep_on_error_still_refuses_a_planted_link(tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "log.jsonl"
    with pytest.raises(UnsafeOutputError), atomic_output(target, keep_on_error=True) as tmp:
        tmp.write_text("line\n")
        target.symlink_to(victim)
        raise Failure
    assert victim.read_text() == "precious" and listing(tmp_path) == ["log.jsonl", "victim.txt"]


def test_temporary_keeps_the_suffix_and_lives_beside_the_output(tmp_path) -> None:
    with atomic_output(tmp_path / "mask.tif") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".tif" and tmp.name.startswith(".")
        tmp.write_bytes(b"II*\x00")
    assert (tmp_path / "mask.tif").read_bytes() == b"II*\x00"


# --- sets of outputs ---------------------------------------------------------------------


def old_set(folder: Path) -> list[Path]:
    paths = [folder / "a.tif", folder / "b.json"]
    for path in paths:
        path.write_text(f"old {path.name}")
    return paths


def test_a_set_is_replaced_together(tmp_path) -> None:
    paths = old_set(tmp_path)
    with atomic_outputs(paths) as temporaries:
        assert [t.suffix for t in temporaries] == [".tif", ".json"]
        for temporary, path in zip(temporaries, paths):
            temporary.write_text(f"new {path.name}")
    assert [p.read_text() for p in paths] == ["new a.tif", "new b.json"]
    assert listing(tmp_path) == ["a.tif", "b.json"]


def test_a_set_with_a_failing_writer_keeps_every_old_file(tmp_path) -> None:
    paths = old_set(tmp_path)
    with pytest.raises(Failure), atomic_outputs(paths) as temporaries:
        temporaries[0].write_text("new")
        raise Failure
    assert [p.read_text() for p in paths] == ["old a.tif", "old b.json"]
    assert listing(tmp_path) == ["a.tif", "b.json"]


def test_a_set_with_an_unwritten_member_replaces_nothing(tmp_path) -> None:
    paths = old_set(tmp_path)
    missing = pytest.raises(FileNotFoundError, match="outputs not written")
    with missing, atomic_outputs(paths) as temporaries:
        temporaries[0].write_text("new")
    assert [p.read_text() for p in paths] == ["old a.tif", "old b.json"]
    assert listing(tmp_path) == ["a.tif", "b.json"]


def test_a_link_planted_on_the_second_output_replaces_nothing(tmp_path) -> None:
    paths = old_set(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    refused = pytest.raises(UnsafeOutputError, match="symbolic link")
    with refused, atomic_outputs(paths) as temporaries:
        for temporary in temporaries:
            temporary.write_text("new")
        paths[1].unlink()
        paths[1].symlink_to(victim)
    assert paths[0].read_text() == "old a.tif" and victim.read_text() == "precious"
    assert listing(tmp_path) == ["a.tif", "b.json", "victim.txt"]


def test_a_link_planted_at_a_temporary_of_the_set_is_removed_not_followed(tmp_path) -> None:
    paths = old_set(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / f".b.tmp-{os.getpid()}.json").symlink_to(victim)
    with atomic_outputs(paths) as temporaries:
        for temporary in temporaries:
            temporary.write_text("new")
    assert victim.read_text() == "precious" and paths[1].read_text() == "new"


def test_output_folders_refuse_links_and_files(tmp_path) -> None:
    assert check_output_folder(tmp_path / "new") == tmp_path / "new"
    assert check_output_folder(tmp_path) == tmp_path
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        check_output_folder(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnsafeOutputError, match="not a folder"):
        check_output_folder(tmp_path / "file")


def test_a_dangling_link_at_the_temporary_name_does_not_create_its_target(tmp_path) -> None:
    """A planted link to a file that does not exist yet: writing through it would create a
    file wherever it points."""
    outside = tmp_path / "elsewhere" / "created.txt"
    outside.parent.mkdir()
    (tmp_path / f".out.tmp-{os.getpid()}.txt").symlink_to(outside)
    write_text_atomic(tmp_path / "out.txt", "payload")
    assert not outside.exists() and (tmp_path / "out.txt").read_text() == "payload"
    assert not (tmp_path / "out.txt").is_symlink()
    paths = old_set(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / f".b.tmp-{os.getpid()}.json").symlink_to(tmp_path / "made.json")
    with atomic_outputs(paths) as temporaries:
        for temporary in temporaries:
            temporary.write_text("new")
    assert not (tmp_path / "made.json").exists() and paths[1].read_text() == "new"
