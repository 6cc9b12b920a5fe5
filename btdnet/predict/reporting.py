"""What every ``btdnet-predict`` mode shares: exit codes, one-line errors, the record writer.

Kept apart from the argument parsing (``cli.py``) and scene mode (``scene_cli.py``), which
both use it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from btdnet.errors import one_line
from btdnet.safe_write import (
    UnsafeOutputError,
    atomic_output,
    check_output_folder,
    check_output_path,
)

PROG = "btdnet-predict"
EXIT_OK, EXIT_PARTIAL, EXIT_FATAL = 0, 1, 2
PREDICTIONS_FILE = "predictions.jsonl"


class UsageError(Exception):
    """Bad command-line arguments."""


class FatalError(Exception):
    """A problem that stops the whole run; the message is one line."""


def prepare_output_folder(out_dir: Path) -> Path:
    """Create the output folder; refuse one that is a link (its target would be written) or
    that we cannot write into, and a ``predictions.jsonl`` that is a link or a folder."""
    try:
        check_output_folder(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        check_output_path(out_dir / PREDICTIONS_FILE)
        probe, name = tempfile.mkstemp(prefix=".btdnet-write-test-", dir=out_dir)
        os.close(probe)  # writable: tested by writing, as access() does not tell for every user
        os.unlink(name)
    except UnsafeOutputError as exc:
        raise FatalError(str(exc)) from exc
    except OSError as exc:
        detail = exc.strerror or type(exc).__name__
        raise FatalError(f"{out_dir}: output folder is not writable ({detail})") from exc
    return out_dir / PREDICTIONS_FILE


@contextmanager
def open_predictions_file(out_dir: Path) -> Iterator[IO[str]]:
    """``predictions.jsonl`` written under a temporary name, renamed over the old one at the end.

    Open it only once the model has loaded. The rename also happens when the run stops early
    (an interrupt, an error): the records of the prompts already answered stay with their files.
    """
    final = prepare_output_folder(out_dir)
    with atomic_output(final, keep_on_error=True) as tmp, tmp.open("w", encoding="utf-8") as out:
        yield out


class Reporter:
    """Writes JSON lines, warnings and errors without breaking the progress bar."""

    def __init__(self, progress: Any, predictions: IO[str]) -> None:
        self.progress = progress
        self.predictions = predictions
        self.failures = 0

    def _write(self, line: str, stream: IO[str]) -> None:
        if self.progress is not None:
            self.progress.write(line, file=stream)
        else:
            print(line, file=stream, flush=True)

    def record(self, record: dict[str, Any]) -> None:
        line = json.dumps(record)
        self._write(line, sys.stdout)
        self.predictions.write(line + "\n")
        self.predictions.flush()

    def note(self, message: str | None) -> None:
        """One informative line on stderr (e.g. the mode chosen for an image); None: nothing."""
        if message:
            self._write(f"{PROG}: {one_line(message)}", sys.stderr)

    def warning(self, message: str) -> None:
        self._write(f"{PROG}: warning: {one_line(message)}", sys.stderr)

    def error(self, message: str, count: int = 1) -> None:
        self.failures += count
        self._write(f"{PROG}: error: {one_line(message)}", sys.stderr)
