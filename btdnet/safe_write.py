"""Output files written so that a failure loses nothing and no link is followed.

Every file the tools write goes through :func:`atomic_output`: the content is written to a
temporary file in the same folder (same suffix, so format-by-extension writers still work) and
renamed over the destination only when complete. A destination that is a symbolic link or not
a regular file is refused (its target is never written), so a crash leaves either the old file
or the new one, never a truncated one, and nothing outside the output folder is touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class UnsafeOutputError(OSError):
    """An output path the tool refuses to write (a link, a folder, a device...)."""


def check_output_path(path: str | Path) -> Path:
    """Raise :class:`UnsafeOutputError` unless ``path`` is absent or a regular file."""
    path = Path(path)
    if path.is_symlink():
        raise UnsafeOutputError(
            f"{path}: is a symbolic link; refusing to write through it (remove the link)"
        )
    if path.exists() and not path.is_file():
        raise UnsafeOutputError(f"{path}: exists and is not a regular file; refusing to replace it")
    return path


@contextmanager
def atomic_output(path: str | Path, *, keep_on_error: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    On an exception the temporary file is removed and ``path`` is left as it was, unless
    ``keep_on_error`` (a log whose lines are each complete): then it is renamed all the same.
    """
    path = check_output_path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    if tmp.exists() or tmp.is_symlink():  # a leftover, or a planted link: never written through
        tmp.unlink()
    try:
        try:
            yield tmp
        except BaseException:
            if keep_on_error and tmp.is_file():
                check_output_path(path)
                os.replace(tmp, path)
            raise
        check_output_path(path)  # a link planted while we wrote is still refused
        os.replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
