"""Which code made a result: the package version and, in a git checkout, the commit.

A measurement kept as evidence (an ablation run's ``result.json``) names the code that made it,
so a table built over several sittings can say which commits its runs came from. Outside a
checkout (an installed wheel) the commit is ``None``; nothing here fails a run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import btdnet

SOURCE_ROOT = Path(btdnet.__file__).resolve().parent.parent
CODE_PATHS = ("btdnet", "bicor", "configs", "scripts")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version(root: Path = SOURCE_ROOT) -> dict[str, Any]:
    """``{"btdnet": version, "commit": hash or None, "code_modified": bool or None}``.

    ``code_modified`` is true when tracked files under the code folders (``CODE_PATHS``)
    differ from the commit (results and docs do not count); both None outside a git checkout
    that tracks the package's own files.
    """
    # the package must be tracked there: a wheel installed in a venv inside some checkout
    # would otherwise take that checkout's commit for its own
    tracked = _git(root, "ls-files", "--error-unmatch", "--", "btdnet/__init__.py")
    commit = _git(root, "rev-parse", "--verify", "HEAD") if tracked is not None else None
    modified = None
    if commit is not None:
        status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
        modified = None if status is None else bool(status)
    return {"btdnet": btdnet.__version__, "commit": commit, "code_modified": modified}


__all__ = ["CODE_PATHS", "SOURCE_ROOT", "code_version"]
