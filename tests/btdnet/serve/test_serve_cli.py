"""btdnet-serve's command line: --help, and one line + exit 2 for a bad checkpoint."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from btdnet.serve.cli import main


def test_help_explains_the_server(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for words in ("POST /predict", "127.0.0.1", "--max-upload-mb", "--max-queue", "/docs"):
        assert words in text


def test_missing_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "nope"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("btdnet-serve: error:") and "checkpoint folder not found" in err
    assert "\n" not in err


def test_bad_limits_are_refused(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path), "--max-upload-mb", "0"]) == 2
    assert "--max-upload-mb" in capsys.readouterr().err
