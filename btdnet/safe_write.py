"""Output files written so that a failure loses nothing and no link is followed.

Every file the tools write goes through :func:`atomic_output`: the content is written to a
temporary file in the same folder (same suffix, so format-by-extension writers still work) and
renamed over the destination only when complete. A destination that is a symbolic link or not
a regular file is refused (its target is never written), so a crash leaves either the old file
or the new one, never a truncated one, and nothing outside the output folder is touched.

The published file has the permissions a plain ``open(path, "w")`` would give it: those of the
file it replaces, or ``0o666`` minus the user's umask for a new file. Some writers create their
file owner-only (safetensors writes 0600); the mode is set on the temporary, through a
descriptor opened without following links, before the rename.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator, Sequence
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


def check_output_folder(path: str | Path) -> Path:
    """Raise :class:`UnsafeOutputError` unless ``path`` is absent or a real folder (no link)."""
    path = Path(path)
    if path.is_symlink():
        raise UnsafeOutputError(
            f"{path}: is a symbolic link; refusing to write into it (remove the link)"
        )
    if path.exists() and not path.is_dir():
        raise UnsafeOutputError(f"{path}: exists and is not a folder; refusing to replace it")
    return path


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask: read from /proc (no change to it), else set-and-restored under a
    lock (another thread could create a file during the swap; only where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def publish_mode(temporary: Path, destination: Path) -> None:
    """Give ``temporary`` the mode ``destination`` should have once renamed over it: the mode
    of the regular file it replaces, else ``0o666 & ~umask``. ``temporary`` is opened with
    O_NOFOLLOW, so a link planted in its place is refused, never followed."""
    try:
        mode = stat.S_IMODE(os.stat(destination, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~current_umask()
    try:
        descriptor = os.open(temporary, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        raise UnsafeOutputError(f"{temporary}: cannot open the written file ({error})") from error
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise UnsafeOutputError(f"{temporary}: not a regular file; refusing to publish it")
        os.fchmod(descriptor, mode)
    finally:
        os.close(descriptor)


def temporary_path(path: Path) -> Path:
    """The temporary file :func:`atomic_output` writes for ``path`` (same folder, suffix)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def _discard(path: Path) -> None:
    """Remove a temporary of ours (or a link planted in its place: only the link)."""
    if path.is_symlink() or path.is_file():
        path.unlink()


@contextmanager
def atomic_outputs(paths: Sequence[str | Path]) -> Iterator[list[Path]]:
    """Yield temporary paths for a SET of outputs; replace them all only if the block succeeds.

    Every destination is checked (no link, no folder) before anything is written and again
    before the renames, so a failure part-way (one writer of several) leaves the previous set
    as it was. Every temporary must have been written when the block ends.
    """
    destinations = [check_output_path(path) for path in paths]
    temporaries = [temporary_path(path) for path in destinations]
    for temporary in temporaries:
        _discard(temporary)
    try:
        yield temporaries
        missing = [str(t) for t in temporaries if t.is_symlink() or not t.is_file()]
        if missing:
            raise FileNotFoundError(f"outputs not written: {', '.join(missing)}")
        for temporary, destination in zip(temporaries, destinations):
            check_output_path(destination)  # a link planted while we wrote is still refused
            publish_mode(temporary, destination)
        for temporary, destination in zip(temporaries, destinations):
            os.replace(temporary, destination)
    finally:
        for temporary in temporaries:
            _discard(temporary)


@contextmanager
def atomic_output(path: str | Path, *, keep_on_error: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    On an exception the temporary file is removed and ``path`` is left as it was, unless
    ``keep_on_error`` (a log whose lines are each complete): then it is renamed all the same.
    """
    path = check_output_path(path)
    tmp = temporary_path(path)
    if tmp.exists() or tmp.is_symlink():  # a leftover, or a planted link: never written through
        tmp.unlink()
    try:
        try:
            yield tmp
        except BaseException:
            if keep_on_error and tmp.is_file():
                check_output_path(path)
                publish_mode(tmp, path)
                os.replace(tmp, path)
            raise
        check_output_path(path)  # a link planted while we wrote is still refused
        publish_mode(tmp, path)
        os.replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
