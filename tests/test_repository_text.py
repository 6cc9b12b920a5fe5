"""The repository speaks of what it is, not of how or where it was built.

Every tracked text file (``git ls-files``) is scanned for an absolute path of a build machine,
a reference to a file or tool outside the repository, a numbered work period, or an issue
number told as history (commit messages carry that). The test plants each case in a temporary
file to show the scanner finds it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

FORBIDDEN: dict[str, re.Pattern[str]] = {
    "absolute path of a build machine": re.compile(
        r"(?<![\w.~-])/(?:work|root|home/[A-Za-z_][\w.-]*|Users/[A-Za-z_][\w.-]*)/|/tmp/exp"
    ),
    "reference outside the repository": re.compile(r"\.\./shared\b|\bfresh-check\b"),
    "numbered work period": re.compile(
        r"\bsessions?[ _-]?\d+|\bsession-start\b|\bwork period \d+", re.IGNORECASE
    ),
    "issue number as history": re.compile(r"\bissues? #?\d+", re.IGNORECASE),
}


def tracked_files() -> list[Path]:
    """The repository's tracked files (``git ls-files``)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [ROOT / name for name in listed.decode("utf-8").split("\0") if name]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file (a NUL byte, or not UTF-8)."""
    try:
        data = path.read_bytes()
    except OSError:  # tracked but removed in the working tree
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def findings(path: Path, name: str) -> list[str]:
    """One ``name:line: what (text)`` per forbidden match in the file's name or its text."""
    found = [
        f"{name}: {what} (in the file name)"
        for what, pattern in FORBIDDEN.items()
        if pattern.search(name)
    ]
    text = text_of(path)
    for number, line in enumerate((text or "").splitlines(), start=1):
        for what, pattern in FORBIDDEN.items():
            match = pattern.search(line)
            if match:
                found.append(f"{name}:{number}: {what} ({match.group(0)!r})")
    return found


def test_no_tracked_file_refers_to_how_or_where_it_was_built():
    problems = []
    for path in tracked_files():
        name = path.relative_to(ROOT).as_posix()
        if name != THIS:  # this file spells the patterns out
            problems += findings(path, name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("read from /work/data/scene.tif", "absolute path of a build machine"),
        ("masks written to /work/out/", "absolute path of a build machine"),
        ("cd /home/alice/btdnet && make", "absolute path of a build machine"),
        ("cp model /root/models/", "absolute path of a build machine"),
        ("see /Users/bob/Downloads/x.tif", "absolute path of a build machine"),
        ("python /tmp/exp2/train.py", "absolute path of a build machine"),
        ("as ../shared/design/notes.md says", "reference outside the repository"),
        ("measured with `fresh-check make demo`", "reference outside the repository"),
        ("as before (session 9)", "numbered work period"),
        ("## Session 10: notes", "numbered work period"),
        ("tried since sessions 5-6", "numbered work period"),
        ("| start of session-start seed |", "numbered work period"),
        ("the list of issue #4", "issue number as history"),
        ("after issue 12", "issue number as history"),
    ],
)
def test_the_scanner_catches_each_case(tmp_path, line, what):
    planted = tmp_path / "planted.md"
    planted.write_text(f"A harmless first line.\n{line}\n", encoding="utf-8")
    assert [f"planted.md:2: {what}"] == [f.split(" (")[0] for f in findings(planted, "planted.md")]


def test_the_scanner_reads_file_names_and_leaves_ordinary_text_alone(tmp_path):
    named = tmp_path / "session-start-seed0.md"
    named.write_text("a report\n", encoding="utf-8")
    assert findings(named, "docs/mutation/session-start-seed0.md") == [
        "docs/mutation/session-start-seed0.md: numbered work period (in the file name)"
    ]
    ordinary = tmp_path / "ordinary.md"
    ordinary.write_text(
        "btdnet-predict --out runs/x; a sessionless server; the tests/ folder; see #37 of the\n"
        "list? no: runs/work/x, ~/work/data and ./home/a/ are relative; /tmpfs is not /tmp/exp\n",
        encoding="utf-8",
    )
    assert findings(ordinary, "ordinary.md") == [
        "ordinary.md:2: absolute path of a build machine ('/tmp/exp')"
    ]
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\0/work/x session 3")
    assert findings(binary, "image.png") == []


LINK = re.compile(r"\]\(([^)\s]+)\)")


def broken_links(path: Path, root: Path) -> list[str]:
    """Relative links of a Markdown file (outside code) whose target does not exist."""
    broken, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor on the same page
            file = (path.parent / target.split("#")[0]).resolve()
            if not file.exists() or root not in file.parents:
                broken.append(f"{path.relative_to(root)}:{number}: {target}")
    return broken


def test_relative_links_of_the_docs_resolve():
    pages = [p for p in tracked_files() if p.suffix == ".md" and p.is_file()]
    problems = [problem for page in pages for problem in broken_links(page, ROOT)]
    assert not problems, "\n".join(problems)


def test_the_link_check_finds_a_missing_page(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("x\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "[a](docs/there.md#part) [b](docs/gone.md) [c](https://example.org/x) [d](#top)\n"
        "[e](../outside.md) `[f](code.md)`\n```\n[g](block.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page, tmp_path) == [
        "README.md:1: docs/gone.md",
        "README.md:2: ../outside.md",
    ]


def test_the_readme_is_a_front_door():
    """At most 250 lines; its first screen holds a picture the toolkit made and the two
    commands; running it on a GeoTIFF is found within the first 60 lines."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250
    first_screen = "\n".join(lines[:30])
    picture = re.search(r"!\[[^\]]*\]\((docs/images/[\w.-]+\.png)\)", first_screen)
    assert picture and (ROOT / picture.group(1)).is_file()
    assert "make demo" in first_screen and "make test" in first_screen
    assert any(re.match(r"#+ .*GeoTIFF", line) for line in lines[:60])
