"""Every command answers ``--help``, shares one vocabulary for the common options, and has the
options (and option values) that README.md and docs/*.md show it with.

Commands run in this process (``runpy`` for scripts/*.py, the entry function for console
scripts), so the whole check takes seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest

from btdnet.cli_options import (
    add_amp_option,
    add_device_option,
    add_progress_option,
    add_threads_option,
)
from btdnet.precision import MIXED_PRECISION_CHOICES

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(path.name for path in (ROOT / "scripts").glob("*.py"))
# The pages whose option tables describe one command.
TABLES = {"docs/predict.md": "btdnet-predict", "docs/serve.md": "btdnet-serve"}
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
CHOICES = re.compile(r"(--[a-z][a-z0-9-]*) \{([^}]*)\}")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_|.]*$|\.\.\.|^<|^\[|^\$")
# A list of two or more backticked words (`a` (default), `b` or `c`): an option's values.
VALUE_LIST = re.compile(
    r"(?:`[a-z0-9]+`(?:\s*\(default[^)]*\))?(?:,\s*|\s+or\s+|/)\s*)+`[a-z0-9]+`"
)
# Scripts that hand their arguments to one of several parsers, chosen by this option.
DISPATCHERS = {"benchmark.py": "--task"}
_HELP: dict[str, str] = {}


def console_scripts(pyproject: Path) -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: name -> "module:function" (Python 3.10 has no
    tomllib; the section is plain ``name = "value"`` lines)."""
    section = re.search(
        r"^\[project\.scripts\]\n(.*?)(?:^\[|\Z)",
        pyproject.read_text(encoding="utf-8"),
        flags=re.M | re.S,
    )
    assert section, f"{pyproject}: no [project.scripts]"
    return dict(re.findall(r'^"?([\w.-]+)"?\s*=\s*"([^"]+)"', section.group(1), flags=re.M))


CONSOLE = console_scripts(ROOT / "pyproject.toml")


def _run_help(command: str) -> str:
    """The ``--help`` text of a console script or of scripts/NAME.py (cached); ``command`` may
    carry a dispatcher's choice (``benchmark.py --task seg``)."""
    if command in _HELP:
        return _HELP[command]
    out = io.StringIO()
    old_argv = sys.argv
    command, *choice = command.split()
    sys.argv = [command, *choice, "--help"]
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
            if command in CONSOLE:
                module, function = CONSOLE[command].split(":")
                getattr(importlib.import_module(module), function)()
            else:
                runpy.run_path(str(ROOT / "scripts" / command), run_name="__main__")
    finally:
        sys.argv = old_argv
    assert stop.value.code in (0, None), f"{command} --help exited {stop.value.code}"
    _HELP[" ".join([command, *choice])] = out.getvalue()
    return out.getvalue()


def _options_with_choices(help_text: str) -> tuple[set[str], dict[str, set[str]]]:
    """The option strings of a help text's usage block (not its prose, which may name an option
    the command does not have) and the choices it shows for each."""
    usage = help_text.split("\n\n", 1)[0]
    flat = " ".join(usage.split())
    options = set(OPTION.findall(flat)) | ({"--help"} if "[-h]" in flat else set())
    choices = {name: set(words.split(",")) for name, words in CHOICES.findall(flat)}
    return options, choices


@pytest.mark.parametrize("command", [*sorted(CONSOLE), *SCRIPTS])
def test_every_command_answers_help(command):
    text = _run_help(command)
    assert text.startswith("usage:"), f"{command} --help printed {text[:80]!r}"
    assert "--help" in text


def _parser(add) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p", add_help=False)
    add(parser)
    return parser


def test_shared_options_take_the_same_words():
    amp = _parser(add_amp_option)
    for word in (*MIXED_PRECISION_CHOICES, "none"):
        assert amp.parse_args(["--amp", word]).amp == ("no" if word == "none" else word)
    assert amp.parse_args([]).amp == "no"
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        amp.parse_args(["--amp", "fp8"])
    assert _parser(add_device_option).parse_args([]).device == "auto"
    threads = _parser(add_threads_option)
    assert threads.parse_args([]).threads is None
    assert threads.parse_args(["--threads", "3"]).threads == 3
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        threads.parse_args(["--threads", "0"])
    progress = _parser(add_progress_option)
    assert progress.parse_args([]).progress is True
    assert progress.parse_args(["--no-progress"]).progress is False


def test_every_amp_option_shows_the_one_vocabulary():
    """A command with ``--amp`` offers exactly auto|no|bf16|fp16 (btdnet.precision)."""
    for command in [*sorted(CONSOLE), *SCRIPTS]:
        options, choices = _options_with_choices(_run_help(command))
        if "--amp" in options:
            assert choices.get("--amp") == set(MIXED_PRECISION_CHOICES), command


@pytest.mark.parametrize("argv", [["--amp", "no"], ["--amp", "auto"], ["--amp", "none"]])
def test_serve_accepts_the_amp_words_of_predict(argv):
    from btdnet.predict.cli import build_parser as predict_parser
    from btdnet.serve.cli import build_parser as serve_parser

    common = ["--checkpoint", "c"]
    served = serve_parser().parse_args([*common, *argv]).amp
    predicted = predict_parser().parse_args([*common, "--out", "o", *argv]).amp
    assert served == predicted == ("no" if argv[1] == "none" else argv[1])


def _command_of(words: list[str]) -> tuple[str, list[str]] | None:
    """(command, its arguments) of a shell line's words, or None when it runs none of ours."""
    for index, word in enumerate(words):
        if word in CONSOLE:
            return word, words[index + 1 :]
        if word.startswith("scripts/") and Path(word).name in SCRIPTS:
            return Path(word).name, words[index + 1 :]
    return None


def _shown_commands(text: str) -> list[str]:
    """Shell lines of code blocks and inline code spans (continuations joined)."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    lines = []
    for block in blocks:
        lines += block.replace("\\\n", " ").splitlines()
    return lines + inline


def _words(line: str) -> list[str]:
    line = line.split(" #")[0]
    for separator in ("&&", "|", ";"):
        line = line.split(separator)[0]
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def documented_uses() -> list[tuple[str, str, str, str | None]]:
    """(doc file, command, option, value shown or None) for every option a doc shows."""
    uses = []
    for doc in DOCS:
        for line in _shown_commands(doc.read_text(encoding="utf-8")):
            found = _command_of(_words(line))
            if found is None:
                continue
            command, args = found
            dispatch = DISPATCHERS.get(command)
            if dispatch in args and args.index(dispatch) + 1 < len(args):
                command = f"{command} {dispatch} {args[args.index(dispatch) + 1]}"
            for index, word in enumerate(args):
                name = word.split("=")[0]
                if not OPTION.fullmatch(name):
                    continue
                value = word.split("=", 1)[1] if "=" in word else None
                if value is None and index + 1 < len(args):
                    following = args[index + 1]
                    value = None if following.startswith("-") else following
                uses.append((str(doc.relative_to(ROOT)), command, name, value))
    return uses


def table_uses(doc: Path, command: str) -> list[tuple[str, str, str, str | None]]:
    """(doc, command, option, a value named in its row) for every row of a doc's option
    tables: the values are the words of a list of backticked words in the row; a row
    without such a list gives one use with value None."""
    uses = []
    for line in doc.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2:
            continue
        options = OPTION.findall(cells[0])
        values = [
            word
            for run in VALUE_LIST.finditer(" ".join(cells[1:]))
            for word in re.findall(r"`([a-z0-9]+)`", run.group(0))
        ]
        for option in options:
            uses += [(str(doc.relative_to(ROOT)), command, option, v) for v in values or [None]]
    return uses


def documented_table_uses() -> list[tuple[str, str, str, str | None]]:
    uses = []
    for doc, command in TABLES.items():
        if (ROOT / doc).is_file():
            uses += table_uses(ROOT / doc, command)
    return uses


def test_the_docs_show_commands():
    commands = {command for _, command, _, _ in documented_uses()}
    assert {"btdnet-predict", "btdnet-serve"} <= commands


def test_options_the_docs_show_exist_with_the_values_shown():
    problems = []
    for doc, command, option, value in documented_uses() + documented_table_uses():
        options, choices = _options_with_choices(_run_help(command))
        options.add(DISPATCHERS.get(command.split()[0], "--help"))
        if option not in options:
            problems.append(f"{doc}: {command} has no {option}")
        elif (
            value is not None
            and option in choices
            and not PLACEHOLDER.search(value)
            and value not in choices[option]
        ):
            problems.append(f"{doc}: {command} {option} {value}: not one of {choices[option]}")
    assert not problems, "\n".join(problems)


def test_the_docs_check_catches_a_wrong_option_and_value(tmp_path, monkeypatch):
    planted = tmp_path / "planted.md"
    planted.write_text(
        "```bash\nbtdnet-serve --checkpoint c --amp fp8 \\\n    --no-such-option\n```\n"
        "and inline `btdnet-predict --amp bf16 --out o`\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sys.modules[__name__], "DOCS", [planted])
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    uses = documented_uses()
    assert ("planted.md", "btdnet-serve", "--amp", "fp8") in uses
    assert ("planted.md", "btdnet-serve", "--no-such-option", None) in uses
    assert ("planted.md", "btdnet-predict", "--amp", "bf16") in uses
    with pytest.raises(AssertionError, match="no-such-option") as failed:
        test_options_the_docs_show_exist_with_the_values_shown()
    assert "--amp fp8" in str(failed.value)
    assert "btdnet-predict" not in str(failed.value)


def test_options_are_read_from_the_usage_block_only():
    text = (
        "usage: p [-h] [--amp {auto,no}]\n          [--tile SIZE]\n\n"
        "Prose naming --bands, an option p does not have.\n\noptions:\n  --amp {auto,no}\n"
    )
    options, choices = _options_with_choices(text)
    assert options == {"--help", "--amp", "--tile"} and choices == {"--amp": {"auto", "no"}}


def test_the_table_check_reads_each_value_of_a_row(tmp_path, monkeypatch):
    planted = tmp_path / "predict.md"
    planted.write_text(
        "| option | meaning |\n|---|---|\n| `--amp` | `none` (default), `bf16` |\n"
        "| `--tile SIZE` | tiles |\n| `--geojson-crs` | `wgs84`: no `crs` member |\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    uses = table_uses(planted, "btdnet-predict")
    assert ("predict.md", "btdnet-predict", "--amp", "none") in uses
    assert ("predict.md", "btdnet-predict", "--tile", None) in uses
    assert ("predict.md", "btdnet-predict", "--geojson-crs", None) in uses
    monkeypatch.setattr(sys.modules[__name__], "TABLES", {"predict.md": "btdnet-predict"})
    monkeypatch.setattr(sys.modules[__name__], "DOCS", [])
    with pytest.raises(AssertionError, match="--amp none"):
        test_options_the_docs_show_exist_with_the_values_shown()


def _swallowed_newlines(path: Path) -> list[int]:
    """Lines of a file's non-raw string literals that end in one backslash (the newline is
    swallowed: a help example runs into the next line)."""
    import tokenize

    found = []
    with path.open("rb") as handle:
        for token in tokenize.tokenize(handle.readline):
            if token.type != tokenize.STRING or "r" in token.string.split("'")[0].split('"')[0]:
                continue
            for offset, line in enumerate(token.string.splitlines()[:-1]):
                stripped = line.rstrip("\n")
                if stripped.endswith("\\") and not stripped.endswith("\\\\") and offset > 0:
                    found.append(token.start[0] + offset)
    return found


def test_no_help_example_runs_into_the_next_line(tmp_path):
    sources = [*(ROOT / "scripts").glob("*.py"), *(ROOT / "btdnet").rglob("*.py")]
    sources += list((ROOT / "bicor").rglob("*.py"))
    bad = {
        str(path.relative_to(ROOT)): lines
        for path in sources
        if (lines := _swallowed_newlines(path))
    }
    assert not bad
    planted = tmp_path / "planted.py"
    planted.write_text(
        '"""Run it.\n\n    python x.py --a 1 \\\n        --b 2\n"""\n', encoding="utf-8"
    )
    assert _swallowed_newlines(planted) == [3]


SHARED_OPTIONS = ("--device", "--amp", "--threads", "--progress", "--no-progress", "--num-workers")
SHARED_OPTIONS += ("--seed",)


def shared_options_defined_outside(path: Path) -> list[str]:
    """``add_argument`` calls of ``path`` that define a shared option themselves."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
            and any(
                isinstance(arg, ast.Constant) and arg.value in SHARED_OPTIONS for arg in node.args
            )
        ):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_shared_options_are_defined_only_in_cli_options(tmp_path):
    sources = [*(ROOT / "scripts").glob("*.py"), *(ROOT / "btdnet").rglob("*.py")]
    sources += [*(ROOT / "bicor").rglob("*.py")]
    owner = ROOT / "btdnet" / "cli_options.py"
    bad = [hit for path in sources if path != owner for hit in shared_options_defined_outside(path)]
    assert not bad, f"define these with btdnet.cli_options: {bad}"
    planted = tmp_path / "planted.py"
    planted.write_text(
        'p.add_argument("--out")\np.add_argument(\n    "--device", default="cpu")\n'
        'argv = ["--device", "cpu"]\n',
        encoding="utf-8",
    )
    assert shared_options_defined_outside(planted) == ["planted.py:2"]
