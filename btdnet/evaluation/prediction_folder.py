"""The ``--save-predictions`` folder of both benchmarks: claimed before any prediction is written.

A benchmark writes one file per sample there. It never replaces a file it did not write: the
folder gets a mark, ``.btdnet-predictions.json``, listing every file name a run of the
benchmark announced there (written before the first prediction, so an interrupted run then a
rerun replaces its own files). A destination that exists and is not listed (a user's file, or
another tool's), is a symbolic link or is not a regular file is refused with one line naming it,
before the model runs. Files of other names are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from btdnet.safe_write import (
    UnsafeOutputError,
    check_output_folder,
    check_output_path,
    write_text_atomic,
)

MARK = ".btdnet-predictions.json"


def _marked_names(folder: Path) -> set[str]:
    """The file names an earlier run announced in ``folder`` (empty without a mark)."""
    mark = check_output_path(folder / MARK)
    if not mark.exists():
        return set()
    try:
        names = json.loads(mark.read_text(encoding="utf-8"))["files"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError("'files' is not a list of names")
    except (ValueError, KeyError, TypeError) as error:
        raise UnsafeOutputError(
            f"{mark}: not a predictions mark this benchmark wrote ({error}); remove it or "
            "choose another folder"
        ) from error
    return set(names)


def claim_prediction_folder(folder: str | Path, names: Iterable[str]) -> Path:
    """Create ``folder`` if needed and mark ``names`` as this benchmark's files there.

    Raises:
        UnsafeOutputError: ``folder`` is a link or not a folder; a name to write exists and is a
            link, not a regular file, or was not written by the benchmark (not in the mark).
    """
    folder = check_output_folder(folder)
    names = sorted(set(names))
    if folder.exists():
        ours = _marked_names(folder)
        for name in names:
            path = check_output_path(folder / name)
            if path.exists() and name not in ours:
                raise UnsafeOutputError(
                    f"{path}: exists and was not written by the benchmark; refusing to replace "
                    "it (choose an empty folder, or move the file)"
                )
        names = sorted(ours | set(names))
    else:
        folder.mkdir(parents=True)
    write_text_atomic(folder / MARK, json.dumps({"files": names}, indent=1) + "\n")
    return folder


__all__ = ["MARK", "claim_prediction_folder"]
