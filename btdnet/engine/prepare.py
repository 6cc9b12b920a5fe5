""" "Local rank 0 prepares, the others wait": one helper for data written before training."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def prepare_on_local_main(
    marker: str | Path,
    write: Callable[[], object],
    *,
    timeout_s: float = 3600.0,
    poll_s: float = 1.0,
) -> None:
    """Run ``write()`` once per machine unless ``marker`` (its last file) already exists.

    Local rank 0 (``LOCAL_RANK``, set by ``accelerate launch``/``torchrun``; 0 when unset)
    writes; every other process polls until ``marker`` appears, and raises ``TimeoutError``
    after ``timeout_s`` seconds. ``write`` must create ``marker`` last, so that a waiting
    process never reads a half-written set.
    """
    marker = Path(marker)
    if marker.is_file():
        return
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        write()
        if not marker.is_file():
            raise RuntimeError(f"{marker}: the data preparation did not write its marker file")
        return
    deadline = time.monotonic() + timeout_s
    while not marker.is_file():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{marker}: the data was not written in time by local rank 0")
        time.sleep(poll_s)
