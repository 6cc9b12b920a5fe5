"""Files the tools publish get the permissions a plain open() would give: the user's umask for a
new file (safetensors alone writes 0600), the old file's mode when one is replaced; the mode is
set without following a link planted in the temporary's place."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from btdnet.safe_write import (
    UnsafeOutputError,
    atomic_output,
    current_umask,
    write_text_atomic,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """``set(mask)``: change the process umask for the test; restored afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_saved_weights_follow_the_umask(tmp_path, umask, mask, expected):
    from btdnet.models import build_model

    umask(mask)
    assert current_umask() == mask
    build_model("tiny", pretrained=False, training=False).save_pretrained(tmp_path / "m")
    assert _mode(tmp_path / "m" / "model.safetensors") == expected
    assert _mode(tmp_path / "m" / "config.json") == expected


def test_an_owner_only_writer_still_publishes_with_the_umask(tmp_path, umask):
    umask(0o022)
    with atomic_output(tmp_path / "w.bin") as tmp:
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)  # as safetensors does
        os.write(descriptor, b"weights")
        os.close(descriptor)
    assert _mode(tmp_path / "w.bin") == 0o644


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "notes.txt"
    target.write_text("old")
    target.chmod(0o640)
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o640


def test_a_link_planted_at_the_temporary_is_not_followed(tmp_path, umask):
    umask(0o022)
    outside = tmp_path / "outside.txt"
    outside.write_text("theirs")
    outside.chmod(0o600)
    with pytest.raises(UnsafeOutputError), atomic_output(tmp_path / "out.txt") as tmp:
        tmp.symlink_to(outside)  # swapped in after the writer, before the publish
    assert _mode(outside) == 0o600 and outside.read_text() == "theirs"
    assert not (tmp_path / "out.txt").exists() and not tmp.is_symlink()
