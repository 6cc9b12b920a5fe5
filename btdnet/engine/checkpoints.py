"""Checkpoint folders written atomically, and the training state inside them.

Layout under ``<output_dir>/checkpoints/``::

    epoch-0003/                 a model folder (the task's loader reads it) ...
      model.safetensors, config.json
      training_state/           ... plus what resuming needs
        optimizer.pt            tensors only, read back with ``torch.load(weights_only=True)``
        scheduler.pt
        progress.json           epoch, step, best metric, ...
        rng-<rank>.json         python / numpy / torch RNG states of each process
    last -> epoch-0003          symbolic links, replaced atomically
    best -> epoch-0002

A checkpoint is committed by rename only: its files are written and fsynced under
``<name>.tmp``, the completion mark is written and fsynced there, an existing ``<name>`` (a
re-save after resuming from an earlier point) is moved aside to ``<name>.old``, the ``.tmp``
folder is renamed to ``<name>``, ``last``/``best`` are switched with ``os.replace`` on a new
link, and only then is the old copy dropped. A run killed between any two of these steps
leaves links to complete checkpoints (or a dangling link that resume skips); ``.tmp`` and
``.old`` folders are never resumed from and are removed by the next save. Nothing here
unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from btdnet.errors import CheckpointError

STATE_DIR = "training_state"
PROGRESS_FILE = "progress.json"
COMPLETE_MARK = "COMPLETE"
TEMP_SUFFIXES = (".tmp", ".old")


def _atomic_symlink(target_name: str, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.swap")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target_name, tmp)
    os.replace(tmp, link)


def begin(root: Path, name: str) -> Path:
    """Create an empty ``<root>/<name>.tmp`` folder to write a checkpoint into."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / STATE_DIR).mkdir(parents=True)
    return tmp


def _fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` and the folders themselves to disk."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in [*sorted(p for p in folder.rglob("*") if p.is_dir()), folder]:
        _fsync_dir(path)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(root: Path, tmp: Path, *, best: bool, keep: int) -> Path:
    """Make the written ``tmp`` folder the checkpoint ``last`` (and ``best``) points to.

    Steps, each leaving a resumable state if the process dies after it: fsync the files,
    write + fsync the completion mark, move an existing ``<name>`` aside, rename, switch the
    links, drop the old copy and prune.
    """
    _fsync_tree(tmp)
    mark = tmp / STATE_DIR / COMPLETE_MARK
    with open(mark, "w", encoding="utf-8") as handle:
        handle.write("ok\n")
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(mark.parent)
    final = tmp.with_suffix("")
    aside = final.with_name(f"{final.name}.old")
    if aside.exists():
        shutil.rmtree(aside)
    if final.exists():
        os.replace(final, aside)
    os.replace(tmp, final)
    _fsync_dir(root)
    _atomic_symlink(final.name, root / "last")
    if best:
        _atomic_symlink(final.name, root / "best")
    _fsync_dir(root)
    if aside.exists():
        shutil.rmtree(aside)
    _prune(root, keep)
    return final


def _prune(root: Path, keep: int) -> None:
    protected = {p.resolve().name for p in (root / "last", root / "best") if p.is_symlink()}
    complete = sorted(p for p in root.iterdir() if _is_complete(p) and not p.is_symlink())
    for old in complete[: max(0, len(complete) - keep)]:
        if old.name not in protected:
            shutil.rmtree(old)
    for stale in root.iterdir():
        if stale.suffix in TEMP_SUFFIXES and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def is_temporary(path: Path) -> bool:
    """A folder a commit writes or moves aside (``*.tmp``, ``*.old``): never resumed from."""
    return path.name.endswith(TEMP_SUFFIXES)


def _is_complete(path: Path) -> bool:
    if is_temporary(path) or is_temporary(path.resolve()):
        return False
    return path.is_dir() and (path / STATE_DIR / COMPLETE_MARK).is_file()


def find_resume_checkpoint(path: Path) -> Path:
    """Resolve what ``--resume`` names: a checkpoint folder, a ``checkpoints/`` folder or a run."""
    if is_temporary(path):
        raise CheckpointError(
            f"{path}: a temporary folder of an unfinished checkpoint save; resume from the run "
            "folder or a complete checkpoint"
        )
    candidates = [path, path / "last", path / "checkpoints" / "last"]
    for candidate in candidates:
        if _is_complete(candidate):
            return candidate.resolve()
    for folder in (path, path / "checkpoints"):
        complete = complete_checkpoints(folder)
        if complete:
            return complete[-1].resolve()
    raise CheckpointError(
        f"{path}: no complete checkpoint to resume from (looked for last/, checkpoints/last/ "
        "and folders holding training_state/COMPLETE)"
    )


def complete_checkpoints(folder: Path) -> list[Path]:
    """The complete checkpoints directly under ``folder`` (no links, no ``*.tmp``/``*.old``),
    oldest first (by the global step they hold, then the name); [] if ``folder`` is no folder."""
    if not folder.is_dir():
        return []
    complete = [p for p in folder.iterdir() if _is_complete(p) and not p.is_symlink()]
    return sorted(complete, key=_progress_step)


def checkpoint_step(folder: Path) -> int:
    """The global step a checkpoint holds (-1 when its progress file cannot be read)."""
    return _progress_step(folder)[0]


def _progress_step(folder: Path) -> tuple[int, str]:
    """Sort key of complete checkpoints: the global step they hold, then the name."""
    try:
        step = int(json.loads((folder / STATE_DIR / PROGRESS_FILE).read_text())["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        step = -1
    return step, folder.name


def save_tensors(obj: dict, path: Path) -> None:
    torch.save(obj, path)


def load_tensors(path: Path) -> dict:
    """Load an optimizer/scheduler state written by :func:`save_tensors`, executing nothing."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing from the checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot be read safely ({exc})") from exc


def write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing from the checkpoint")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc


def capture_rng() -> dict[str, Any]:
    """The RNG states of python, numpy and torch (CPU and CUDA) as JSON-able data."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": _to_json(random.getstate()),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(_to_tuple(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value


def _to_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value
