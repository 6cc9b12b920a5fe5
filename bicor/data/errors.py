"""Errors raised by the closed-set data loaders; every message starts with the file concerned.

They derive from the toolkit's :class:`btdnet.data.errors.DatasetError`, so one ``except``
catches data problems of the referring and the closed-set paths alike.
"""

from __future__ import annotations

from btdnet.data.errors import DatasetError


class ClosedSetDataError(DatasetError):
    """A closed-set dataset file is missing, unreadable, or holds values it should not."""


class UnknownColourError(ClosedSetDataError):
    """A colour label holds a colour that is none of the dataset's class colours."""
