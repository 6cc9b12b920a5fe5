"""Hostile conditions for scene mode: links planted at every output name and at the parts
folder, ``--resume`` with another model / options / input / a planted part, a failed rerun, two
runs on one folder, scenes too large to run, and odd option values."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from btdnet.models import build_model
from btdnet.predict.predictor import Predictor
from btdnet.predict.scene import pipeline
from btdnet.predict.scene.pipeline import (
    PartError,
    SceneStateError,
    SceneTooLargeError,
    UnsafeOutputError,
)
from btdnet.predict.scene.state import PartsLock

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("fiona")

TRANSFORM = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5400000.0)
OUTPUTS = ("scene.tif", "scene_probability.tif", "scene.geojson", "scene.gpkg", "scene.json")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny", pretrained=False)


class ScaledModel(nn.Module):
    """Target where a pixel is brighter than ``level``; ``level`` is a weight (a checkpoint)."""

    def __init__(self, tiny: nn.Module, level: float = 0.0) -> None:
        super().__init__()
        self.config = tiny.config
        self.tokenizer = tiny.tokenizer
        self.level = nn.Parameter(torch.tensor(level))
        self.tiles = 0

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        self.tiles += pixel_values.shape[0]
        mean = pixel_values.mean(dim=1, keepdim=True)  # (B, 1, S, S)
        return SimpleNamespace(target_logits=40.0 * (mean - self.level))


def write_tiff(path: Path, bands: np.ndarray) -> Path:
    profile = {"driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2]}
    profile.update(count=bands.shape[0], dtype=bands.dtype.name)
    profile.update(crs="EPSG:32633", transform=TRANSFORM)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def scene(path: Path, box: tuple[slice, slice], height: int = 260, width: int = 250) -> Path:
    """uint8 scene: dark, with one bright box."""
    bands = np.full((3, height, width), 20, dtype=np.uint8)
    bands[:, box[0], box[1]] = 200
    return write_tiff(path, bands)


BOX = (slice(30, 110), slice(60, 130))
OTHER_BOX = (slice(150, 240), slice(10, 90))


def read_band(path: str | Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path) as dataset:
            return dataset.read(1)


def run(predictor: Predictor, image: Path, out: Path, **options):
    options.setdefault("overlap", 16)
    return predictor.predict_scene(image, "roof", out, save_probability=True, **options)


@pytest.fixture
def predictor(tiny) -> Predictor:
    return Predictor(ScaledModel(tiny), device="cpu", batch_size=3)


# --- links ------------------------------------------------------------------------------


@pytest.mark.parametrize("output", OUTPUTS)
def test_link_at_any_output_name_is_refused_and_its_target_untouched(
    tmp_path, predictor, output
) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    out = tmp_path / "out"
    out.mkdir()
    (out / output).symlink_to(notes)
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        run(predictor, image, out)
    assert notes.read_text() == "my notes" and (out / output).is_symlink()
    assert sorted(p.name for p in out.iterdir()) == [output]  # nothing else was written


def test_link_at_an_output_planted_after_a_run_is_refused_on_rerun(tmp_path, predictor) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    first = run(predictor, image, out).record
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    (out / "scene.gpkg").unlink()
    (out / "scene.gpkg").symlink_to(notes)
    before = (out / "scene.tif").read_bytes()
    with pytest.raises(UnsafeOutputError):
        run(predictor, image, out, overlap=8)
    assert notes.read_text() == "my notes"
    assert (out / "scene.tif").read_bytes() == before  # the set is replaced whole or not at all
    assert json.loads((out / "scene.json").read_text())["overlap"] == first["overlap"]


def test_parts_folder_that_is_a_link_is_refused_and_the_folder_untouched(
    tmp_path, predictor
) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    names = ("row_000000.npz", "manifest.json", "mask.tif", "probability.tif")
    for name in names:
        (elsewhere / name).write_text(f"precious {name}")
    out = tmp_path / "out"
    out.mkdir()
    (out / "scene.parts").symlink_to(elsewhere, target_is_directory=True)
    for resume in (False, True):
        with pytest.raises(UnsafeOutputError, match="symbolic link"):
            run(predictor, image, out, resume=resume)
    assert {p.name: p.read_text() for p in elsewhere.iterdir()} == {
        name: f"precious {name}" for name in names
    }


class Interrupt(Exception):
    """Stands for Ctrl-C in the middle of a run."""


def interrupted(predictor: Predictor, image: Path, out: Path, rows: int = 2) -> Path:
    """Run until ``rows`` rows of tiles are finished (3 tiles a row); returns the parts folder."""
    calls = []

    def stop(tiles: int) -> None:
        calls.append(tiles)
        if len(calls) == rows + 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(predictor, image, out, on_tiles=stop)
    parts = out / "scene.parts"
    assert len(list(parts.glob("row_*.npz"))) == rows
    return parts


def test_links_inside_the_parts_folder_are_refused_on_resume(tmp_path, predictor) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    parts = interrupted(predictor, image, out)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    (parts / "mask.tif").symlink_to(notes)
    with pytest.raises(UnsafeOutputError, match=r"mask\.tif"):
        run(predictor, image, out, resume=True)
    assert notes.read_text() == "my notes"
    (parts / "mask.tif").unlink()
    part = parts / "row_000001.npz"
    part.rename(tmp_path / "kept.npz")
    part.symlink_to(tmp_path / "kept.npz")
    with pytest.raises(PartError, match=r"row_000001\.npz"):
        run(predictor, image, out, resume=True)


# --- a failed rerun keeps the previous outputs -------------------------------------------


def test_failed_rerun_keeps_every_previous_output(tmp_path, predictor, monkeypatch) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    run(predictor, image, out)
    before = {name: (out / name).read_bytes() for name in OUTPUTS}

    def broken_vectors(features, geojson, gpkg, *args):
        geojson.write_text("half")
        raise OSError("disk full while writing polygons")

    monkeypatch.setattr(pipeline, "write_vectors", broken_vectors)
    scene(image, OTHER_BOX)
    with pytest.raises(OSError, match="disk full"):
        run(predictor, image, out)
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == before
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


# --- resume proves model, options, input and parts ---------------------------------------


def test_resume_with_another_model_is_refused(tmp_path, tiny) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    interrupted(Predictor(ScaledModel(tiny, 0.0), device="cpu", batch_size=3), image, out)
    other = Predictor(ScaledModel(tiny, 0.5), device="cpu", batch_size=3)
    with pytest.raises(SceneStateError, match="model_blake2b"):
        run(other, image, out, resume=True)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"presence_threshold": 0.9}, "presence_threshold"), ({"amp": "bf16"}, "amp")],
)
def test_resume_with_another_answer_changing_option_is_refused(
    tmp_path, tiny, change, field
) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    model = ScaledModel(tiny)
    interrupted(Predictor(model, device="cpu", batch_size=3), image, out)
    with pytest.raises(SceneStateError, match=field):
        run(Predictor(model, device="cpu", batch_size=3, **change), image, out, resume=True)


def _same_size_other_content(image: Path) -> None:
    """Replace the scene by another of the same name, size and modification time."""
    stat = image.stat()
    scene(image, OTHER_BOX)
    assert image.stat().st_size == stat.st_size
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_resume_of_an_interrupted_run_with_a_replaced_input_is_refused(tmp_path, predictor) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    interrupted(predictor, image, out)
    _same_size_other_content(image)
    with pytest.raises(SceneStateError, match="image_blake2b"):
        run(predictor, image, out, resume=True)


def test_resume_of_a_finished_run_with_a_replaced_input_answers_the_new_input(
    tmp_path, predictor
) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    old = run(predictor, image, out)
    _same_size_other_content(image)
    predictor.model.tiles = 0
    new = run(predictor, image, out, resume=True)
    assert predictor.model.tiles > 0  # not the old answer
    mask = read_band(new.record["mask_geotiff"]) > 0
    assert mask[OTHER_BOX].all() and not mask[BOX[0].start + 5, BOX[1].start + 5]
    assert new.record["run_key"] != old.record["run_key"]
    predictor.model.tiles = 0
    again = run(predictor, image, out, resume=True)  # same input now: the finished answer
    assert predictor.model.tiles == 0 and again.record["run_key"] == new.record["run_key"]


def test_planted_part_of_the_wrong_shape_is_refused_before_any_work(tmp_path, predictor) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    parts = interrupted(predictor, image, out)
    with np.load(parts / "row_000001.npz") as data:
        arrays = {key: data[key] for key in data.files}
    arrays["core_mask"] = np.ones((5, 250), dtype=bool)  # the row holds 64 core rows
    np.savez_compressed(parts / "row_000001.npz", **arrays)
    predictor.model.tiles = 0
    with pytest.raises(PartError, match=r"row_000001.npz: core_mask is bool\[5, 250\]"):
        run(predictor, image, out, resume=True)
    assert predictor.model.tiles == 0


def test_corrupt_manifest_is_named(tmp_path, predictor) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    parts = interrupted(predictor, image, out)
    (parts / "manifest.json").write_text("{not json")
    with pytest.raises(SceneStateError, match=r"manifest.json: cannot resume: the manifest"):
        run(predictor, image, out, resume=True)


def test_second_run_on_the_same_output_is_refused_while_the_first_holds_it(
    tmp_path, predictor
) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    parts = interrupted(predictor, image, out)
    kept = sorted(p.name for p in parts.iterdir())
    with PartsLock(parts), pytest.raises(SceneStateError, match="another run"):
        run(predictor, image, out)
    assert sorted(p.name for p in parts.iterdir()) == kept  # the first run's parts are kept
    assert run(predictor, image, out, resume=True).resumed_rows == 2


# --- size limits ---------------------------------------------------------------------------


def test_scene_over_the_pixel_or_tile_limit_is_refused_before_any_tile(tmp_path, predictor) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    out = tmp_path / "out"
    too_many = r"2,600,000,000 pixels \(50000 x 52000\), above"
    with pytest.raises(SceneTooLargeError, match=too_many):
        run(predictor, image, out, gsd=0.0025)  # 0.5 m -> 0.0025 m: 200x each way
    with pytest.raises(SceneTooLargeError, match=r"needs 12 tiles of 96 pixels, above the"):
        pipeline.predict_scene(
            predictor, image, "roof", out, options=pipeline.SceneOptions(overlap=16, max_tiles=8)
        )
    assert predictor.model.tiles == 0 and not out.exists()


# --- command line --------------------------------------------------------------------------


def _cli(capsys, *args) -> tuple[int, list[str]]:
    from btdnet.predict.cli import main

    status = main([str(a) for a in args])
    return status, capsys.readouterr().err.strip().splitlines()


def sparse_scene(path: Path, side: int) -> Path:
    """A tiled, georeferenced ``side`` x ``side`` GeoTIFF with no block written (a few kB)."""
    profile = {"driver": "GTiff", "height": side, "width": side, "count": 3, "dtype": "uint8"}
    profile.update(tiled=True, blockxsize=512, blockysize=512, SPARSE_OK=True)
    profile.update(crs="EPSG:32633", transform=TRANSFORM)
    with rasterio.open(path, "w", **profile):
        pass
    return path


def test_cli_refuses_a_huge_sparse_scene_and_a_tiny_gsd_with_exit_2(
    tmp_path, capsys, checkpoint
) -> None:
    image = sparse_scene(tmp_path / "huge.tif", 60_000)
    assert image.stat().st_size < 1_000_000
    argv = ["--checkpoint", checkpoint, "--text", "roofs", "--out", tmp_path / "out"]
    status, err = _cli(capsys, *argv, "--image", image, "--tile", "auto", "--no-progress")
    assert status == 2
    assert err == [
        f"btdnet-predict: error: {image}: the scene has 3,600,000,000 pixels (60000 x 60000), "
        "above the limit of 2,000,000,000; raise --scene-max-pixels (0: no limit) if that much "
        "work is meant, or choose a coarser --gsd"
    ]
    small = scene(tmp_path / "small.tif", BOX)
    status, err = _cli(capsys, *argv, "--image", small, "--tile", "auto", "--gsd", "0.0001")
    assert status == 2 and "pixels (1250000 x 1300000), above the limit" in err[0]
    status, err = _cli(capsys, *argv, "--image", small, "--tile", "auto", "--scene-max-tiles", "3")
    assert status == 2 and "needs 9 tiles" in err[0] and "--scene-max-tiles" in err[0]
    assert not (tmp_path / "out" / "huge.parts").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--tile", "¹²⁸", "--tile must be auto or a number of pixels >= 32, got '¹²⁸'"),
        ("--gsd", "inf", "--gsd must be a positive number, got inf"),
        ("--gsd", "nan", "--gsd must be a positive number, got nan"),
        ("--scene-max-pixels", "-1", "--scene-max-pixels must be >= 0 (0: no limit), got -1"),
    ],
)
def test_cli_odd_scene_option_values_are_usage_errors(
    tmp_path, capsys, checkpoint, option, value, message
) -> None:
    image = scene(tmp_path / "scene.tif", BOX)
    argv = ["--checkpoint", checkpoint, "--image", image, "--text", "roofs"]
    extra = [] if option == "--tile" else ["--tile", "auto"]
    status, err = _cli(capsys, *argv, "--out", tmp_path / "out", *extra, option, value)
    assert (status, err[-1]) == (2, f"btdnet-predict: error: {message}")


def test_run_key_of_a_finished_state_is_blake2b_128_of_the_sorted_manifest() -> None:
    """Records written by one process or release are recognised by the next: the key is
    BLAKE2b with a 16-byte digest over the manifest's JSON with sorted keys (no per-process
    hash, no dependence on the order the manifest was built in)."""
    import hashlib

    from btdnet.predict.scene.state import run_key

    manifest = {"tile": 96, "text": "the tank", "gsd": None, "overlap": 32}
    text = '{"gsd": null, "overlap": 32, "text": "the tank", "tile": 96}'
    expected = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    assert run_key(manifest) == expected and len(expected) == 32
    assert run_key(dict(reversed(manifest.items()))) == expected
    assert run_key({**manifest, "overlap": 33}) != expected
