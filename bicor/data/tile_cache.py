"""Decode each big tile once to a ``.npy`` file, then read crops through a memory map.

A 6000x6000 Potsdam TIFF takes a large fraction of a second to decode; cutting hundreds of
512-pixel crops from it must not decode it again each time. :class:`TileCache` stores the
decoded array (image pixels, or label ids after the colour conversion) as ``.npy`` under a
cache folder and opens it with ``np.load(mmap_mode="r")``: a crop then reads only its window.

Cache files are keyed by the source file's absolute path, size and modification time and by
what was decoded (``kind``), so an edited or replaced file is decoded again. Files are written
to a temporary name and renamed, so data-loader workers that race on a tile never see a
half-written cache file.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bicor.data.errors import ClosedSetDataError

CACHE_FORMAT_VERSION = 1


class TileCache:
    """Decoded tiles as read-only memory-mapped arrays under ``cache_dir``.

    Args:
        cache_dir: folder for the ``.npy`` files (created on first write).

    ``get(source, kind, decode)`` returns the cached array, calling ``decode(source)`` and
    storing its result the first time. Opened maps are kept per process; they are not
    pickled, so a dataset holding a cache can be sent to data-loader workers cheaply.
    """

    def __init__(self, cache_dir: str | Path) -> None:
        self.cache_dir = Path(cache_dir)
        self._open: dict[tuple[str, str], np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {"cache_dir": self.cache_dir}

    def __setstate__(self, state: dict) -> None:
        self.cache_dir = state["cache_dir"]
        self._open = {}

    def cache_path(self, source: str | Path, kind: str) -> Path:
        """Where the decoded ``kind`` of ``source`` is (or will be) stored."""
        source = Path(source).resolve()
        stat = source.stat()
        key = f"{source}|{stat.st_size}|{stat.st_mtime_ns}|{kind}|{CACHE_FORMAT_VERSION}"
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
        return self.cache_dir / f"{source.stem}.{kind}.{digest}.npy"

    def get(
        self, source: str | Path, kind: str, decode: Callable[[Path], np.ndarray]
    ) -> np.ndarray:
        """The decoded array of ``source`` as a read-only memory map, decoding it if needed."""
        source = Path(source)
        array = self._open.get((str(source), kind))
        if array is not None:
            return array
        if not source.is_file():
            raise ClosedSetDataError(f"{source}: file not found")
        target = self.cache_path(source, kind)
        if not target.is_file():
            self._write(target, decode(source))
        try:
            array = np.load(target, mmap_mode="r")
        except (OSError, ValueError):  # damaged cache file: decode again
            self._write(target, decode(source))
            array = np.load(target, mmap_mode="r")
        self._open[(str(source), kind)] = array
        return array

    def _write(self, target: Path, array: np.ndarray) -> None:
        partial = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as handle:
                np.save(handle, np.ascontiguousarray(array))
            os.replace(partial, target)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise ClosedSetDataError(
                f"{target}: cannot write the tile cache ({error}); pass a writable cache_dir"
            ) from error
