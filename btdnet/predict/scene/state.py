"""What a scene run keeps in its output folder between runs, and what ``--resume`` must prove.

A run writes ``<out>/<name>.parts/manifest.json``: the scene (its resolved path, size and a
BLAKE2b digest of its whole content), the model (a digest of its weights), every option that
changes the answer (text, tile, overlap, gsd, amp mode, presence threshold) and the grid.
``--resume`` keeps the finished rows only when the manifest it finds equals the one it would
write; a finished run's record carries the digest of that manifest (``run_key``), so a
finished scene is answered again only for the same model, options and input content.

The parts folder is locked (``flock``) while a run uses it: a second run on the same output
name stops with one line instead of deleting the first run's parts.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from pathlib import Path
from typing import Any

import torch

from btdnet.safe_write import UnsafeOutputError, check_output_folder, write_text_atomic
from btdnet.tiling import TileGrid

MANIFEST = "manifest.json"
CHUNK = 1 << 20
_MODEL_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class SceneStateError(ValueError):
    """A parts folder to resume does not belong to this scene and these options."""


def file_digest(path: str | Path) -> str:
    """BLAKE2b (128-bit) hex digest of a file's whole content, read in 1 MiB chunks."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_digest(model: Any) -> str:
    """BLAKE2b digest of a model's class and every tensor of its ``state_dict`` (cached).

    The cache is keyed by the model object: a predictor's model is not trained in place.
    """
    cached = _MODEL_DIGESTS.get(model)
    if cached is not None:
        return cached
    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(model).__qualname__.encode())
    state = model.state_dict() if hasattr(model, "state_dict") else {}
    for key, tensor in state.items():
        flat = tensor.detach().contiguous().reshape(-1).cpu()
        digest.update(f"{key}:{flat.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    _MODEL_DIGESTS[model] = digest.hexdigest()
    return _MODEL_DIGESTS[model]


def build_manifest(
    image: Path,
    text: str,
    grid: TileGrid,
    gsd: float | None,
    predictor: Any,
    presence_threshold: float,
) -> dict[str, Any]:
    """Everything a part of this run depends on (see the module docstring)."""
    return {
        "image": str(image.resolve()),
        "image_bytes": image.stat().st_size,
        "image_blake2b": file_digest(image),
        "model_blake2b": model_digest(predictor.model),
        "amp": str(getattr(predictor, "amp_dtype", None)),
        "presence_threshold": float(presence_threshold),
        "text": text,
        "height": grid.height,
        "width": grid.width,
        "tile": grid.tile,
        "overlap": grid.overlap,
        "gsd": gsd,
    }


def run_key(manifest: dict[str, Any]) -> str:
    """Digest of a manifest: equal keys mean the same input, model and options."""
    text = json.dumps(manifest, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class PartsLock:
    """Hold an exclusive ``flock`` on a parts folder (created; a link is refused)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None

    def __enter__(self) -> PartsLock:
        check_output_folder(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
        self._fd = os.open(self.folder, flags)
        try:
            import fcntl
        except ImportError:  # no flock on this system: no lock, as before
            return self
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self.__exit__()
            raise SceneStateError(
                f"{self.folder}: another run is writing this scene into the same folder; "
                "wait for it to finish or give another --out"
            ) from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SceneStateError(
            f"{path}: cannot resume: the manifest is unreadable ({type(exc).__name__}: {exc}); "
            "run without --resume to start over"
        ) from exc
    if not isinstance(found, dict):
        raise SceneStateError(f"{path}: cannot resume: the manifest is not a JSON object")
    return found


def prepare_parts(folder: Path, manifest: dict[str, Any], resume: bool) -> None:
    """Check the (locked) parts folder for ``resume``, or clear our files from it."""
    manifest_path = folder / MANIFEST
    if resume and (manifest_path.is_file() or manifest_path.is_symlink()):
        if manifest_path.is_symlink():
            raise UnsafeOutputError(f"{manifest_path}: is a symbolic link; refusing to read it")
        found = _read_manifest(manifest_path)
        if found != manifest:
            changed = sorted(k for k in manifest if found.get(k) != manifest[k])
            raise SceneStateError(
                f"{folder}: cannot resume: it was started with other {', '.join(changed)}; "
                "run without --resume to start over"
            )
        return
    for item in folder.glob("row_*.npz"):
        item.unlink()  # a link is removed, its target is not touched
    for name in (MANIFEST, "mask.tif", "probability.tif"):
        (folder / name).unlink(missing_ok=True)
    write_text_atomic(manifest_path, json.dumps(manifest, indent=1))


def record_files(record: dict[str, Any]) -> dict[str, str]:
    """The output files a finished record names."""
    keys = ("mask_geotiff", "probability_geotiff", "geojson", "gpkg", "preview")
    return {key: record[key] for key in keys if key in record}


def finished_record(
    out_dir: Path, name: str, key: str, save_probability: bool
) -> dict[str, Any] | None:
    """The record of a scene this folder already finished with the same ``run_key``, else None."""
    record_path = out_dir / f"{name}.json"
    parts = out_dir / f"{name}.parts"
    if parts.exists() or parts.is_symlink() or record_path.is_symlink():
        return None
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("run_key") != key:
        return None
    if save_probability and "probability_geotiff" not in record:
        return None
    files = [Path(path) for path in record_files(record).values()]
    if not all(path.is_file() and not path.is_symlink() for path in files):
        return None
    return record
