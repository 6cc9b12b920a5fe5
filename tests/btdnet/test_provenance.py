"""Which code made a result: the commit of the checkout, and whether its code was modified."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from btdnet.provenance import code_version


def _git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "btdnet").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "btdnet" / "__init__.py").write_text("x = 1\n")
    (root / "docs" / "notes.md").write_text("notes\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first")
    return root


def test_a_checkout_gives_its_commit_and_whether_the_code_changed(checkout: Path) -> None:
    head = _git(checkout, "rev-parse", "HEAD").strip()
    found = code_version(checkout)
    assert found["commit"] == head and found["code_modified"] is False
    (checkout / "docs" / "notes.md").write_text("more notes\n")  # not code
    assert code_version(checkout)["code_modified"] is False
    (checkout / "btdnet" / "__init__.py").write_text("x = 2\n")
    assert code_version(checkout) == {**found, "code_modified": True}


def test_outside_a_checkout_nothing_is_claimed(tmp_path: Path) -> None:
    (tmp_path / "btdnet").mkdir()
    (tmp_path / "btdnet" / "__init__.py").write_text("x = 1\n")
    found = code_version(tmp_path)
    assert found["commit"] is None and found["code_modified"] is None
    assert isinstance(found["btdnet"], str)


def test_an_untracked_copy_inside_a_checkout_does_not_take_its_commit(checkout: Path) -> None:
    # a wheel installed in a venv inside the checkout: same repository, untracked package
    site = checkout / ".venv" / "lib" / "site-packages"
    (site / "btdnet").mkdir(parents=True)
    (site / "btdnet" / "__init__.py").write_text("x = 1\n")
    assert code_version(site)["commit"] is None
