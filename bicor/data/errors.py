"""Errors raised by the closed-set data loaders; every message starts with the file concerned.

They derive from the toolkit's :class:`btdnet.errors.DatasetError`, so one ``except``
catches data problems of the referring and the closed-set paths alike.
"""

from __future__ import annotations

from btdnet.errors import DatasetError


class ClosedSetDataError(DatasetError):
    """A closed-set dataset file is missing, unreadable, or holds values it should not."""


class UnknownColourError(ClosedSetDataError):
    """A colour label holds a colour that is none of the dataset's class colours."""


def check_label_matches_image(label, image, *, label_path, image_path, word: str = "label") -> None:
    """Raise when a (H, W) label and its (H, W, 3) image differ in size, naming both files."""
    if label.shape != image.shape[:2]:
        raise ClosedSetDataError(
            f"{label_path}: {word} is {label.shape[0]}x{label.shape[1]} (HxW) but its "
            f"image {image_path} is {image.shape[0]}x{image.shape[1]}"
        )
