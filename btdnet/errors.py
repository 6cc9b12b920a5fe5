"""Errors shared by every layer (kept free of heavy imports, so the engine can raise them)."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A weight file, model folder or training checkpoint that cannot be used.

    The message is one line that names the file or folder and the problem.
    """


class DatasetError(Exception):
    """A data set file is missing, unreadable or inconsistent; the message names the file.

    Raised by the referring loaders (``btdnet.data``) and, through subclasses, by the
    closed-set loaders (``bicor.data``).
    """


def one_line(error: BaseException | str, limit: int | None = None, *, first: bool = False) -> str:
    """An error or message as one line for a terminal or a log.

    The non-empty lines of ``str(error)``, stripped and joined with spaces (``first``: only the
    first of them, for errors whose next lines are a library's detail); an exception with no
    message gives its type's name. ``limit``: cut to that many characters, ending in "...".
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        text = type(error).__name__ if isinstance(error, BaseException) else ""
    else:
        text = lines[0] if first else " ".join(lines)
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
