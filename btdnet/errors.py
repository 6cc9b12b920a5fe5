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
