"""The Hugging Face Hub, offline: repo ids in the loaders (from a local Hub-cache layout with
every network connection refused), the generated model card from a real run folder, and the
upload through an HfApi stand-in."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest
import torch
import yaml

from btdnet.models.hub import looks_like_repo_id, push_to_hub, resolve_model_source
from btdnet.models.model_card import model_card
from btdnet.models.serialization import CONFIG_NAME, WEIGHTS_NAME, CheckpointError
from btdnet.models.variants import build_model, load_model

REPO = "someone/btdnet-tiny"


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection fails, and huggingface_hub is in offline mode."""
    from huggingface_hub import constants

    def refuse(*_args, **_kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def write_hub_cache(cache: Path, repo_id: str, model_dir: Path, commit: str = "a" * 40) -> Path:
    """The layout huggingface_hub writes: blobs by hash, a snapshot of links, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        data = (model_dir / name).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob.name))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_repo_id_shapes():
    for good in ("user/model", "model", "user/model.v2@main", "Org-1/my_model"):
        assert looks_like_repo_id(good), good
    for bad in ("/abs/path", "a/b/c", "ckpt/", "../x", "user/../x", "a--b/c", "x y", ""):
        assert not looks_like_repo_id(bad), bad
    # each rule alone: '..' or '--' inside a name the pattern accepts, a trailing '.' or '-',
    # and the length of the name (not of the revision) at 96 / 97
    for bad in ("user/na..me", "a..b", "user/na--me", "model.", "user/model-", "u/" + "x" * 95):
        assert not looks_like_repo_id(bad), bad
    assert looks_like_repo_id("u/" + "x" * 94) and looks_like_repo_id("x" * 96 + "@" + "r" * 50)
    assert not looks_like_repo_id("x" * 97)


def test_repo_id_loads_from_the_hub_cache_offline(checkpoint, tmp_path, monkeypatch, no_network):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = write_hub_cache(cache, REPO, checkpoint)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert resolve_model_source(REPO).resolve() == snapshot.resolve()
    loaded = load_model(REPO, training=False)
    reference = load_model(checkpoint, training=False)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name

    from btdnet.predict.predictor import Predictor

    predictor = Predictor.from_pretrained(f"{REPO}@main", device="cpu")
    assert predictor.model.config.variant == "tiny"
    from btdnet import BTDNet

    by_class = BTDNet.from_pretrained(REPO, training=False)  # the transformers-style name
    assert isinstance(by_class, BTDNet)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, by_class.state_dict()[name]), name


def test_uncached_repo_id_offline_is_one_line(tmp_path, monkeypatch, no_network):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(CheckpointError) as error:
        load_model("someone/not-cached")
    message = str(error.value)
    assert message.startswith("someone/not-cached: no such folder")
    assert "HF_HUB_OFFLINE" in message and "\n" not in message


def test_bicor_loader_takes_a_repo_id(tmp_path, monkeypatch, no_network):
    from huggingface_hub import constants

    from bicor.models.bicor_seg import build_bicor, load_bicor

    model = build_bicor("tiny", num_classes=5)
    folder = tmp_path / "bicor"
    model.save_pretrained(folder)
    write_hub_cache(tmp_path / "hub", "someone/bicor-tiny", folder)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = load_bicor("someone/bicor-tiny")
    from bicor.models.bicor_seg import BiCoRSeg

    by_class = BiCoRSeg.from_pretrained("someone/bicor-tiny")
    assert all(torch.equal(t, by_class.state_dict()[n]) for n, t in model.state_dict().items())
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A real (tiny) training run: config.yaml, metrics.jsonl, checkpoints/best."""
    from btdnet.data.synthetic import generate_synthetic_rrsisd
    from btdnet.engine.cli import main
    from btdnet.task import ReferringTask

    tmp = tmp_path_factory.mktemp("hub_run")
    generate_synthetic_rrsisd(
        tmp / "data", train=4, val=2, test=2, size=64, seed=3, show_progress=False
    )
    config = {
        "seed": 0,
        "model": {"variant": "tiny", "pretrained": False, "overrides": {"use_dmols": False}},
        "data": {
            "dataset": "rrsisd",
            "root": str(tmp / "data"),
            "eval_splits": ["val"],
            "image_size": 96,
        },
        "train": {
            "epochs": 2,
            "batch_size": 2,
            "eval_batch_size": 2,
            "lr": 1e-3,
            "trackers": "none",
            "warmup_steps": 1,
        },
    }
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(config))
    code = main(
        ReferringTask.from_config,
        prog="train",
        description="",
        argv=[
            "--config",
            str(tmp / "tiny.yaml"),
            "--output-dir",
            str(tmp / "run"),
            "--no-progress",
        ],
    )
    assert code == 0
    return tmp / "run"


def test_model_card_from_a_real_run(run_folder):
    records = [json.loads(line) for line in (run_folder / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r["split"] == "val"]
    best = max(val, key=lambda r: r["oIoU"])
    card = model_card(run_folder / "checkpoints" / "best", REPO, run_dir=run_folder)
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    meta = yaml.safe_load(front)
    assert meta["license"] == "apache-2.0" and meta["library_name"] == "btdnet"
    assert "| variant | tiny |" in body
    assert f"split **val**, protocol **{best['protocol']}**, epoch {best['epoch']}" in body
    assert f"| {best['oIoU']:.2f} | {best['mIoU']:.2f} |" in body
    assert "- data set: rrsisd" in body and "- epochs: 2" in body
    assert (
        f'Predictor.from_pretrained("{REPO}")' in body
        and f"btdnet-serve --checkpoint {REPO}" in body
    )


class FakeHfApi:
    """Records what push_to_hub would send; nothing leaves the machine."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
        self.calls.append(("upload_folder", repo_id, files))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/1"})()


def test_push_uploads_weights_config_and_card(run_folder, no_network):
    best = run_folder / "checkpoints" / "best"
    api = FakeHfApi()
    url = push_to_hub(best, REPO, run_dir=run_folder, private=True, api=api)
    assert url.endswith("/commit/1")
    (create, repo, options), (upload, repo2, files) = api.calls
    assert upload == "upload_folder"
    assert create == "create_repo" and repo == repo2 == REPO and options["private"] is True
    assert options["exist_ok"] is True  # a second push to the same repo adds a commit
    assert set(files) == {CONFIG_NAME, WEIGHTS_NAME, "README.md"}
    assert files[WEIGHTS_NAME] == (best / WEIGHTS_NAME).read_bytes()
    assert b"split **val**" in files["README.md"]


def test_model_push_to_hub_method(no_network):
    api = FakeHfApi()
    build_model("tiny", pretrained=False, training=False).push_to_hub(REPO, api=api)
    files = api.calls[1][2]
    assert b"Evaluation: not recorded" in files["README.md"]
    assert json.loads(files[CONFIG_NAME])["variant"] == "tiny"


def test_push_refuses_a_bad_repo_id(checkpoint):
    with pytest.raises(ValueError, match="not a Hub repo id"):
        push_to_hub(checkpoint, "a/b/c", api=FakeHfApi())


def test_push_refuses_a_repo_id_with_a_revision(checkpoint):
    # "user/name@v1" is a valid source to read, but one pushes to a repo, not a revision
    api = FakeHfApi()
    with pytest.raises(ValueError, match="'user/btdnet-x@v1' is not a Hub repo id"):
        push_to_hub(checkpoint, "user/btdnet-x@v1", api=api)
    assert api.calls == []  # nothing created, nothing uploaded


def test_predict_and_serve_take_a_repo_id(checkpoint, tmp_path, monkeypatch, no_network):
    from huggingface_hub import constants
    from PIL import Image

    from btdnet.predict.cli import main as predict_main

    write_hub_cache(tmp_path / "hub", REPO, checkpoint)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    image = tmp_path / "scene.png"
    Image.new("RGB", (33, 27), (90, 120, 60)).save(image)
    argv = ["--checkpoint", REPO, "--image", str(image), "--text", "the field", "--out"]
    assert predict_main([*argv, str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert (tmp_path / "out" / "predictions.jsonl").is_file()

    pytest.importorskip("fastapi")
    from btdnet.serve.cli import build_service

    service = build_service(REPO, device="cpu", amp="none", batch_size=2, max_queue=4)
    assert service.info["checkpoint"] == REPO and service.info["variant"] == "tiny"
    service.close()


def test_card_uses_the_runs_own_checkpoint_rule():
    """A run chosen by the authors' rule (best mF1) shows that record and the rule."""
    from btdnet.models.model_card import best_evaluation, results_section

    rule = "best mF1 on test without TTA (the authors' rule)"
    records = [
        {"split": "test", "epoch": 1, "mIoU": 70.0, "mF1": 80.0, "OA": 90.0, "selection": rule},
        {"split": "test", "epoch": 2, "mIoU": 71.0, "mF1": 79.0, "OA": 90.0, "selection": rule},
    ]
    best = best_evaluation(records, "bicor", {})
    assert best.epoch == 1 and best.metrics["mF1"] == 80.0 and best.selection == rule
    assert f"Checkpoint chosen by: {rule}." in results_section(best)
    plain = best_evaluation([{k: v for k, v in r.items() if k != "selection"} for r in records],
                            "bicor", {})  # fmt: skip
    assert plain.epoch == 2 and plain.selection is None  # mIoU without a recorded rule


def test_an_existing_folder_named_like_a_repo_id_is_read_locally(tmp_path, monkeypatch):
    from btdnet.models import hub

    def no_download(*args, **kwargs):
        raise AssertionError("a local folder must not be fetched from the Hub")

    monkeypatch.setattr(hub, "download_model", no_download)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user" / "model").mkdir(parents=True)
    assert resolve_model_source("user/model") == Path("user/model")
    assert resolve_model_source(Path("user/absent")) == Path("user/absent")


def test_staging_refuses_a_folder_that_is_not_empty(checkpoint, tmp_path):
    from btdnet.models.hub import stage_upload

    target = tmp_path / "upload"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    with pytest.raises(CheckpointError, match="not empty"):
        stage_upload(checkpoint, "user/model", target)
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"]
    staged = stage_upload(checkpoint, "user/model", tmp_path / "fresh")
    assert sorted(p.name for p in staged.iterdir()) == sorted(
        [CONFIG_NAME, WEIGHTS_NAME, "README.md"]
    )
    assert (staged / WEIGHTS_NAME).read_bytes() == (checkpoint / WEIGHTS_NAME).read_bytes()
