"""Hostile text-encoder folders: no code runs, no prompt waits, one line names the folder."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from btdnet.models import build_model
from btdnet.models.hf_loading import TextEncoderLoadError
from btdnet.models.text_encoder import build_text_model
from btdnet.resources import default_text_encoder_path

EVIL_CODE = """
import pathlib
pathlib.Path({marker!r}).write_text("ran")
from transformers import BertConfig as EvilConfig, BertModel as EvilModel
from transformers import BertTokenizer as EvilTokenizer
"""


def _minilm_copy(tmp_path: Path, name: str) -> Path:
    source = Path(default_text_encoder_path())
    folder = tmp_path / name
    folder.mkdir()
    for file in ("config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(source / file, folder / file)
    return folder


def _evil_folder(tmp_path: Path, *, in_tokenizer: bool) -> tuple[Path, Path]:
    folder = _minilm_copy(tmp_path, "evil")
    marker = tmp_path / "PWNED"
    (folder / "modeling_evil.py").write_text(EVIL_CODE.format(marker=str(marker)))
    name = "tokenizer_config.json" if in_tokenizer else "config.json"
    data = json.loads((folder / name).read_text())
    if in_tokenizer:
        data["auto_map"] = {"AutoTokenizer": ["modeling_evil.EvilTokenizer", None]}
    else:
        data["auto_map"] = {
            "AutoConfig": "modeling_evil.EvilConfig",
            "AutoModel": "modeling_evil.EvilModel",
        }
        data["model_type"] = "evil"
    (folder / name).write_text(json.dumps(data))
    return folder, marker


@pytest.fixture
def yes_on_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 'y' waiting on stdin: transformers' "[y/N]" prompt would read it and run the code."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\ny\ny\n"))


def test_text_encoder_folder_with_custom_code_is_refused(tmp_path, yes_on_stdin) -> None:
    folder, marker = _evil_folder(tmp_path, in_tokenizer=False)
    with pytest.raises(TextEncoderLoadError) as info:
        build_text_model(name=str(folder), text_config=None, pretrained=True)
    message = str(info.value)
    assert "\n" not in message
    assert str(folder / "config.json") in message and "custom code" in message
    assert not marker.exists()


def test_tokenizer_folder_with_custom_code_is_refused(tmp_path, yes_on_stdin) -> None:
    folder, marker = _evil_folder(tmp_path, in_tokenizer=True)
    model = build_model("tiny", pretrained=False, text_encoder=str(folder))
    with pytest.raises(TextEncoderLoadError) as info:
        model.tokenizer  # noqa: B018 - the lazy load is the point
    assert str(folder / "tokenizer_config.json") in str(info.value)
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_hub_loads_pass_trust_remote_code_false(monkeypatch) -> None:
    """A name that is not a folder (hub) is never checked by us: transformers must refuse."""
    import transformers

    seen: dict[str, object] = {}

    def fake(source, **kwargs):
        seen.update(kwargs)
        raise ValueError("line one\nline two")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", fake)
    with pytest.raises(TextEncoderLoadError) as info:
        build_text_model(name="someone/custom-model", text_config=None, pretrained=True)
    assert seen["trust_remote_code"] is False
    assert "someone/custom-model" in str(info.value) and "line two" not in str(info.value)


def test_pickled_weights_are_refused_naming_the_file(tmp_path) -> None:
    folder = _minilm_copy(tmp_path, "pickled")
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"x": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(TextEncoderLoadError) as info:
        build_text_model(name=str(folder), text_config=None, pretrained=True)
    assert str(folder / "pytorch_model.bin") in str(info.value)
    assert not marker.exists()


def test_unknown_model_type_is_one_short_line() -> None:
    with pytest.raises(TextEncoderLoadError) as info:
        build_text_model(name=None, text_config={"model_type": "nosuchbert"}, pretrained=False)
    assert "nosuchbert" in str(info.value) and len(str(info.value)) < 300


def test_checkpoint_config_cannot_smuggle_auto_map(tmp_path, yes_on_stdin) -> None:
    """``text_config`` of a checkpoint naming custom classes builds the stock architecture."""
    config = {
        "model_type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "vocab_size": 99,
        "auto_map": {"AutoModel": "modeling_evil.EvilModel"},
    }
    model = build_text_model(name=None, text_config=config, pretrained=False)
    assert type(model).__module__.startswith("transformers.")
