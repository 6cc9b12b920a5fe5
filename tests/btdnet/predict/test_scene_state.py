"""What a scene run keeps between runs: the manifest's fields, the model digest, clearing or
keeping the parts folder, and when a finished record may be answered again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from btdnet.predict.scene.state import (
    CHUNK,
    MANIFEST,
    SceneStateError,
    build_manifest,
    file_digest,
    finished_record,
    model_digest,
    prepare_parts,
    run_key,
)
from btdnet.safe_write import UnsafeOutputError
from btdnet.tiling import TileGrid

GRID = TileGrid(height=40, width=50, tile=32, overlap=8)


class Weights(nn.Module):
    def __init__(self, value: float = 1.0, name: str = "w") -> None:
        super().__init__()
        self.register_parameter(name, nn.Parameter(torch.full((2, 3), value)))


class OtherWeights(Weights):
    pass


def _predictor(model: nn.Module, amp=None) -> SimpleNamespace:
    return SimpleNamespace(model=model, amp_dtype=amp)


def test_every_answer_changing_input_changes_its_own_manifest_field(tmp_path: Path) -> None:
    image = tmp_path / "scene.tif"
    image.write_bytes(b"abcd")
    model = Weights()
    base = build_manifest(image, "roof", GRID, None, _predictor(model), 0.5)
    assert base["image"] == str(image.resolve()) and base["image_bytes"] == 4
    assert (base["text"], base["gsd"], base["presence_threshold"]) == ("roof", None, 0.5)
    assert (base["height"], base["width"], base["tile"], base["overlap"]) == (40, 50, 32, 8)
    assert base["amp"] == "None"
    changes = {
        "text": lambda: build_manifest(image, "road", GRID, None, _predictor(model), 0.5),
        "gsd": lambda: build_manifest(image, "roof", GRID, 0.3, _predictor(model), 0.5),
        "tile": lambda: build_manifest(
            image, "roof", TileGrid(40, 50, 48, 8), None, _predictor(model), 0.5
        ),
        "overlap": lambda: build_manifest(
            image, "roof", TileGrid(40, 50, 32, 16), None, _predictor(model), 0.5
        ),
        "height": lambda: build_manifest(
            image, "roof", TileGrid(41, 50, 32, 8), None, _predictor(model), 0.5
        ),
        "width": lambda: build_manifest(
            image, "roof", TileGrid(40, 51, 32, 8), None, _predictor(model), 0.5
        ),
        "presence_threshold": lambda: build_manifest(
            image, "roof", GRID, None, _predictor(model), 0.6
        ),
        "amp": lambda: build_manifest(
            image, "roof", GRID, None, _predictor(model, torch.bfloat16), 0.5
        ),
        "model_blake2b": lambda: build_manifest(
            image, "roof", GRID, None, _predictor(Weights(2.0)), 0.5
        ),
    }
    for field, make in changes.items():
        changed = make()
        assert sorted(k for k in base if changed[k] != base[k]) == [field], field
        assert run_key(changed) != run_key(base)
    image.write_bytes(b"abce")  # same size, other content
    other = build_manifest(image, "roof", GRID, None, _predictor(model), 0.5)
    assert sorted(k for k in base if other[k] != base[k]) == ["image_blake2b"]


def test_the_model_digest_sees_class_names_shapes_and_values() -> None:
    base = model_digest(Weights(1.0))
    assert model_digest(Weights(1.0)) == base  # the same weights in another object
    assert model_digest(Weights(1.5)) != base
    assert model_digest(Weights(1.0, name="v")) != base  # another parameter name
    assert model_digest(OtherWeights(1.0)) != base  # another model class
    reshaped = Weights(1.0)
    reshaped.w = nn.Parameter(torch.ones(3, 2))  # the same bytes in another shape
    assert model_digest(reshaped) != base
    half = Weights(1.0).to(torch.float16)
    assert model_digest(half) != base


def test_a_fresh_run_clears_only_its_own_files_and_resume_keeps_equal_parts(
    tmp_path: Path,
) -> None:
    parts = tmp_path / "scene.parts"
    parts.mkdir()
    manifest = {"text": "roof", "tile": 32}
    for name in ("row_000000.npz", "row_000001.npz", "mask.tif", "probability.tif", "notes.txt"):
        (parts / name).write_bytes(b"x")
    (parts / MANIFEST).write_text(json.dumps(manifest))
    prepare_parts(parts, manifest, resume=True)  # the same run: every part is kept
    assert (parts / "row_000001.npz").exists() and (parts / "mask.tif").exists()
    with pytest.raises(SceneStateError, match=r"started with other text, tile; run without"):
        prepare_parts(parts, {"text": "road", "tile": 48}, resume=True)
    assert (parts / "row_000000.npz").exists()  # a refused resume deletes nothing
    prepare_parts(parts, {"text": "road", "tile": 48}, resume=False)
    assert sorted(p.name for p in parts.iterdir()) == [MANIFEST, "notes.txt"]
    assert json.loads((parts / MANIFEST).read_text()) == {"text": "road", "tile": 48}
    (parts / MANIFEST).write_text("[1, 2]")
    with pytest.raises(SceneStateError, match="the manifest is not a JSON object"):
        prepare_parts(parts, manifest, resume=True)
    (parts / MANIFEST).unlink()
    (parts / "row_000000.npz").write_bytes(b"x")
    prepare_parts(parts, manifest, resume=True)  # nothing to resume from: a fresh start
    assert not (parts / "row_000000.npz").exists()
    (parts / MANIFEST).unlink()
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(manifest))
    (parts / MANIFEST).symlink_to(elsewhere)
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        prepare_parts(parts, manifest, resume=True)


def _finished(out: Path, key: str = "k1", probability: bool = True) -> dict:
    out.mkdir(exist_ok=True)
    record = {"run_key": key, "mask_geotiff": str(out / "scene.tif")}
    (out / "scene.tif").write_bytes(b"m")
    if probability:
        record["probability_geotiff"] = str(out / "scene_probability.tif")
        (out / "scene_probability.tif").write_bytes(b"p")
    (out / "scene.json").write_text(json.dumps(record))
    return record


def test_a_finished_record_is_answered_again_only_when_everything_matches(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    record = _finished(out)
    assert finished_record(out, "scene", "k1", save_probability=True) == record
    assert finished_record(out, "scene", "k2", save_probability=True) is None  # other run
    (out / "scene.parts").mkdir()  # an unfinished run is under way
    assert finished_record(out, "scene", "k1", save_probability=False) is None
    (out / "scene.parts").rmdir()
    (out / "scene_probability.tif").unlink()  # a named output is gone
    assert finished_record(out, "scene", "k1", save_probability=False) is None
    (out / "scene_probability.tif").symlink_to(out / "scene.tif")  # or is a link
    assert finished_record(out, "scene", "k1", save_probability=False) is None
    lean = tmp_path / "lean"
    _finished(lean, probability=False)
    assert finished_record(lean, "scene", "k1", save_probability=False) is not None
    assert finished_record(lean, "scene", "k1", save_probability=True) is None
    (lean / "scene.json").write_text("[]")
    assert finished_record(lean, "scene", "k1", save_probability=False) is None
    (lean / "scene.json").write_text("{broken")
    assert finished_record(lean, "scene", "k1", save_probability=False) is None
    linked = tmp_path / "linked"
    _finished(linked, probability=False)
    (linked / "real.json").write_text((linked / "scene.json").read_text())
    (linked / "scene.json").unlink()
    (linked / "scene.json").symlink_to(linked / "real.json")
    assert finished_record(linked, "scene", "k1", save_probability=False) is None


def test_the_manifest_digest_reads_the_whole_scene_file_past_its_first_chunk(
    tmp_path: Path,
) -> None:
    image = tmp_path / "scene.tif"
    head = bytes(range(256)) * (CHUNK // 256)  # exactly one chunk, kept as it is
    image.write_bytes(head + b"tail one")
    digest = file_digest(image)
    assert digest == hashlib.blake2b(head + b"tail one", digest_size=16).hexdigest()
    before = run_key(build_manifest(image, "roof", GRID, None, _predictor(Weights()), 0.5))
    image.write_bytes(head + b"tail two")  # same size, changed only past the first chunk
    assert file_digest(image) != digest
    after = run_key(build_manifest(image, "roof", GRID, None, _predictor(Weights()), 0.5))
    assert after != before  # a scene changed past its first MiB is not resumed
