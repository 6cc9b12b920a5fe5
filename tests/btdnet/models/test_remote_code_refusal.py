"""hf_loading.refuse_remote_code: every file and key that makes transformers import code from
a model folder is refused before transformers reads the folder."""

from __future__ import annotations

import json

import pytest

from btdnet.models.hf_loading import TextEncoderLoadError, hf_load, refuse_remote_code

FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json")
CODE = {
    "auto_map": {"AutoModel": "modeling_evil.EvilModel"},
    "custom_pipelines": {"evil": {"impl": "pipeline_evil.EvilPipeline", "pt": ["AutoModel"]}},
}


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("key", sorted(CODE))
def test_code_bearing_keys_are_refused_in_every_file(tmp_path, name, key) -> None:
    (tmp_path / name).write_text(json.dumps({"model_type": "bert", key: CODE[key]}))
    with pytest.raises(TextEncoderLoadError, match=f"{name}: asks to run custom code \\({key}\\)"):
        refuse_remote_code(tmp_path)
    calls = []
    with pytest.raises(TextEncoderLoadError, match=key):
        hf_load(lambda *a, **k: calls.append(a), str(tmp_path), what="text encoder")
    assert calls == []  # the factory (transformers) never saw the folder


def test_empty_code_keys_and_plain_folders_pass(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"auto_map": {}, "custom_pipelines": None}))
    refuse_remote_code(tmp_path)
    refuse_remote_code(tmp_path / "absent")  # a hub name, not a folder: transformers decides
    (tmp_path / "tokenizer_config.json").write_text("[1, 2]")  # JSON, not a mapping
    refuse_remote_code(tmp_path)


def test_unreadable_json_is_refused_naming_the_file(tmp_path) -> None:
    (tmp_path / "preprocessor_config.json").write_text("{broken")
    with pytest.raises(TextEncoderLoadError, match=r"preprocessor_config\.json: not readable JSON"):
        refuse_remote_code(tmp_path)


def test_hf_load_passes_trust_remote_code_false_and_wraps_errors(tmp_path) -> None:
    seen = {}

    def factory(source, **kwargs):
        seen.update(kwargs, source=source)
        return "model"

    assert hf_load(factory, str(tmp_path), what="tokenizer", revision="x") == "model"
    assert seen == {"trust_remote_code": False, "revision": "x", "source": str(tmp_path)}

    def broken(source, **kwargs):
        raise OSError("first line\nsecond line")

    with pytest.raises(
        TextEncoderLoadError, match=r"^tokenizer .*: cannot be loaded \(first line\)$"
    ):
        hf_load(broken, str(tmp_path), what="tokenizer")


def test_a_long_reason_is_cut_to_300_characters(tmp_path) -> None:
    def verbose(source, **kwargs):
        raise OSError("r" * 400 + "\nsecond line")

    with pytest.raises(TextEncoderLoadError) as error:
        hf_load(verbose, str(tmp_path), what="tokenizer")
    assert str(error.value).endswith(f"({'r' * 297}...)")

    def exact(source, **kwargs):
        raise OSError("r" * 300)

    with pytest.raises(TextEncoderLoadError) as error:
        hf_load(exact, str(tmp_path), what="tokenizer")
    assert str(error.value).endswith(f"({'r' * 300})")
