"""huggingface_hub's conventions: ``revision``, ``token`` and ``cache_dir`` reach
``snapshot_download`` from every loader; the older ``@revision`` id is read with a warning;
the model card is a huggingface_hub ``ModelCard`` whose metadata carries the metrics.
Offline: ``snapshot_download`` is replaced by a recorder that returns a local folder."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from btdnet.models.hub import resolve_model_source
from btdnet.models.model_card import model_card
from btdnet.models.serialization import CheckpointError

REPO = "someone/btdnet-tiny"


@pytest.fixture
def fake_hub(monkeypatch, checkpoint):
    """``snapshot_download`` recording its arguments and answering with ``checkpoint``."""
    import huggingface_hub

    calls: list[tuple[tuple, dict]] = []

    def snapshot_download(*args, **kwargs):
        calls.append((args, kwargs))
        return str(checkpoint)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def _options(call: tuple[tuple, dict]) -> tuple[str, dict]:
    args, kwargs = call
    return args[0], {k: kwargs.get(k) for k in ("revision", "token", "cache_dir")}


OPTIONS = {"revision": "v1.0", "token": "hf_secret", "cache_dir": "/cache/here"}


def test_the_options_reach_snapshot_download(fake_hub, checkpoint):
    assert resolve_model_source(REPO, **OPTIONS) == checkpoint
    assert _options(fake_hub[0]) == (REPO, OPTIONS)
    assert fake_hub[0][1]["allow_patterns"] == ["config.json", "model.safetensors"]


def test_every_loader_passes_them_on(fake_hub, checkpoint):
    from btdnet import BTDNet
    from btdnet.models.variants import load_model
    from btdnet.predict.predictor import Predictor

    reference = load_model(checkpoint, training=False).state_dict()
    loaded = [
        load_model(REPO, training=False, **OPTIONS),
        BTDNet.from_pretrained(REPO, training=False, **OPTIONS),
        Predictor.from_pretrained(REPO, device="cpu", **OPTIONS).model,
    ]
    assert [_options(call) for call in fake_hub] == [(REPO, OPTIONS)] * 3
    for model in loaded:
        for name, tensor in reference.items():
            assert torch.equal(tensor, model.state_dict()[name]), name


def test_bicor_loaders_pass_them_on(monkeypatch, tmp_path):
    import huggingface_hub

    from bicor.models.bicor_seg import BiCoRSeg, build_bicor, load_bicor

    build_bicor("tiny", num_classes=5).save_pretrained(tmp_path / "seg")
    calls = []
    monkeypatch.setattr(
        huggingface_hub,
        "snapshot_download",
        lambda *a, **k: calls.append((a, k)) or str(tmp_path / "seg"),
    )
    load_bicor(REPO, **OPTIONS)
    BiCoRSeg.from_pretrained(REPO, **OPTIONS)
    assert [_options(call) for call in calls] == [(REPO, OPTIONS)] * 2


def test_the_old_at_form_is_read_as_the_revision_with_a_warning(fake_hub):
    with pytest.warns(FutureWarning, match=r"read as revision='v2'; pass 'someone/btdnet-tiny'"):
        resolve_model_source(f"{REPO}@v2")
    assert _options(fake_hub[0]) == (REPO, {"revision": "v2", "token": None, "cache_dir": None})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the plain id with revision= warns about nothing
        resolve_model_source(REPO, revision="v2")


def test_two_different_revisions_are_refused(fake_hub):
    with pytest.raises(CheckpointError, match=r"revision 'v2' in the id and revision='v3'"):
        resolve_model_source(f"{REPO}@v2", revision="v3")
    assert fake_hub == []


def test_hub_options_on_a_local_folder_are_refused(fake_hub, checkpoint):
    with pytest.raises(CheckpointError, match="a local folder; revision="):
        resolve_model_source(str(checkpoint), revision="v1")
    assert resolve_model_source(str(checkpoint)) == checkpoint and fake_hub == []


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_each_hub_option_alone_on_a_local_folder_is_refused(fake_hub, checkpoint, option):
    with pytest.raises(CheckpointError, match="a local folder; revision="):
        resolve_model_source(str(checkpoint), **{option: OPTIONS[option]})
    with pytest.raises(CheckpointError, match="a local folder"):
        resolve_model_source(checkpoint, **{option: OPTIONS[option]})  # a Path too
    assert fake_hub == []


@pytest.fixture
def run_dir(tmp_path, checkpoint) -> Path:
    """A run folder: config.yaml and metrics.jsonl with a best val record."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("data: {dataset: rrsisd}\ntrain: {epochs: 2}\nseed: 0\n")
    records = [
        {"split": "val", "epoch": 1, "step": 4, "oIoU": 41.234, "mIoU": 40.0, "protocol": "lavt"},
        {"split": "val", "epoch": 2, "step": 8, "oIoU": 47.5, "mIoU": 44.444, "protocol": "lavt"},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def test_the_card_is_a_model_card_with_metrics_install_and_code(checkpoint, run_dir):
    from huggingface_hub import ModelCard

    url = "https://example.org/btdnet"
    card = ModelCard(model_card(checkpoint, REPO, run_dir=run_dir, code_url=url))
    data = card.data
    assert (data.license, data.library_name, data.pipeline_tag) == (
        "apache-2.0",
        "btdnet",
        "image-segmentation",
    )
    assert "referring-image-segmentation" in data.tags
    scores = {
        (r.metric_type, r.dataset_name, r.dataset_split): r.metric_value for r in data.eval_results
    }
    assert scores == {("oIoU", "rrsisd", "val"): 47.5, ("mIoU", "rrsisd", "val"): 44.44}
    assert {r.metric_name for r in data.eval_results} == {
        "oIoU (lavt protocol)",
        "mIoU (lavt protocol)",
    }
    assert f'pip install "btdnet @ git+{url}"' in card.text and f"Code: <{url}>" in card.text
    assert "| 47.50 | 44.44 |" in card.text


def test_a_card_without_run_or_code_link_says_so(checkpoint, monkeypatch):
    from huggingface_hub import ModelCard

    from btdnet.models import model_card as module

    monkeypatch.setattr(module, "code_links", lambda url: (url, None))  # no package metadata
    card = ModelCard(model_card(checkpoint, REPO))
    assert card.data.eval_results is None and "Evaluation: not recorded" in card.text
    assert "source link is not recorded (give `--code-url`" in card.text


@pytest.mark.parametrize("url", ["http://plain.example", "https://x.org/a b", 'https://x"y'])
def test_a_bad_code_url_is_refused(checkpoint, url):
    with pytest.raises(ValueError, match="not an https:// URL"):
        model_card(checkpoint, REPO, code_url=url)


def test_the_commands_take_revision(fake_hub, tmp_path, capsys):
    from PIL import Image

    from btdnet.predict.cli import main as predict_main

    image = tmp_path / "scene.png"
    Image.new("RGB", (33, 27), (90, 120, 60)).save(image)
    argv = ["--image", str(image), "--text", "the field", "--device", "cpu"]
    out = ["--out", str(tmp_path / "a")]
    assert predict_main(["--checkpoint", REPO, "--revision", "v1", *argv, *out]) == 0
    assert _options(fake_hub[-1]) == (REPO, {"revision": "v1", "token": None, "cache_dir": None})
    capsys.readouterr()
    out = ["--out", str(tmp_path / "b")]
    assert predict_main(["--checkpoint", f"{REPO}@v2", *argv, *out]) == 0
    assert _options(fake_hub[-1])[1]["revision"] == "v2"
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and warned[0].startswith("btdnet-predict: warning: someone/")
    assert "read as revision='v2'" in warned[0]

    pytest.importorskip("fastapi")
    from btdnet.serve.cli import build_service

    service = build_service(REPO, device="cpu", amp="no", batch_size=2, max_queue=4, revision="v3")
    service.close()
    assert _options(fake_hub[-1])[1]["revision"] == "v3"


def _raising(monkeypatch, error: Exception) -> None:
    import huggingface_hub

    def snapshot_download(*args, **kwargs):
        raise error

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


def test_each_hub_failure_is_one_line_naming_the_repo_and_revision(monkeypatch):
    import httpx
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    response = httpx.Response(404, request=httpx.Request("GET", "https://hub.invalid/x"))
    cases = [
        (
            RepositoryNotFoundError("404 repo", response=response),
            "someone/btdnet-tiny@v2: no such folder, and no",
        ),
        (
            GatedRepoError("403 gated", response=response),
            "private or gated: log in with `hf auth login`",
        ),
        (
            RevisionNotFoundError("no rev", response=response),
            "someone/btdnet-tiny@v2: the Hub repo has no revision",
        ),
        (
            HfHubHTTPError("500 Server Error\nbody line", response=response),
            "cannot download from the Hub (HfHubHTTPError: 500 Server Error)",
        ),
        (OSError("disk full"), "cannot download from the Hub (OSError: disk full)"),
    ]
    for error, message in cases:
        _raising(monkeypatch, error)
        with pytest.raises(CheckpointError) as info:
            resolve_model_source(REPO, revision="v2")
        assert message in str(info.value) and "\n" not in str(info.value)
    _raising(monkeypatch, RepositoryNotFoundError("404", response=response))
    with pytest.raises(CheckpointError, match=r"^someone/btdnet-tiny: no such folder"):
        resolve_model_source(REPO)  # no revision: no '@' in the name


def test_the_at_form_with_the_same_revision_is_not_a_contradiction(fake_hub):
    with pytest.warns(FutureWarning):
        resolve_model_source(REPO + "@v1.0", revision="v1.0")
    assert _options(fake_hub[0]) == (REPO, {"revision": "v1.0", "token": None, "cache_dir": None})
