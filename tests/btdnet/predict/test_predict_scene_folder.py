"""Many scenes: ``btdnet-predict --image FOLDER --tile auto`` under ``accelerate launch
--num_processes 2`` (CPU) gives each scene to one process, writes every scene's files once,
identical to a one-process run, gathers the records in order and a summary; ``--resume``
reuses finished scenes without running them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from btdnet.predict.cli import main
from btdnet.predict.scene.batch import scene_files
from tests.launch import accelerate_launch

rasterio = pytest.importorskip("rasterio")

TRANSFORM = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5400000.0)
SIZES = [(100, 120), (130, 90), (110, 110)]  # three small scenes of different shapes
TEXT = "the red roofs"


def write_scenes(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for number, (height, width) in enumerate(SIZES):
        bands = np.random.default_rng(number).integers(0, 256, (3, height, width), np.uint8)
        path = folder / f"scene_{number}.tif"
        with rasterio.open(
            path, "w", driver="GTiff", height=height, width=width, count=3, dtype="uint8",
            crs="EPSG:32633", transform=TRANSFORM,
        ) as dst:  # fmt: skip
            dst.write(bands)
        paths.append(path)
    (folder / "notes.txt").write_text("not a scene")
    (folder / "scene_3.tif").write_bytes(b"II*\x00 not really a TIFF")  # fails on its own line
    return paths


def cli_args(checkpoint: Path, folder: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--checkpoint", str(checkpoint), "--image", str(folder), "--text", TEXT,
        "--tile", "auto", "--overlap", "16", "--out", str(out), "--device", "cpu",
        "--no-progress", *extra,
    ]  # fmt: skip


def records(out: Path) -> list[dict]:
    lines = (out / "predictions.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def band(path: str) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read(1)


@pytest.mark.slow
def test_two_processes_share_the_scenes_and_equal_one_process(tmp_path, capsys, checkpoint) -> None:
    folder = tmp_path / "scenes"
    scenes = write_scenes(folder)
    assert scene_files(folder) == [*scenes, folder / "scene_3.tif"]  # sorted, no .txt
    assert main(cli_args(checkpoint, folder, tmp_path / "one")) == 1  # one scene failed
    err = capsys.readouterr().err
    assert "scene_3.tif" in err and "4 scene job(s): 3 done (0 reused), 1 failed; 1 process" in err
    launched = accelerate_launch(
        ["-m", "btdnet.predict.cli", *cli_args(checkpoint, folder, tmp_path / "two")],
        processes=2,
    )
    assert launched.returncode == 1, launched.stderr[-3000:]
    assert "scene_3.tif" in launched.stderr  # the failure gathered and reported once
    one, two = records(tmp_path / "one"), records(tmp_path / "two")
    assert [Path(r["image"]).name for r in two] == [p.name for p in scenes]  # job order, once
    for a, b in zip(one, two):
        for key in ("objects", "area_pixels", "tiles", "height", "width"):
            assert a[key] == b[key], key
        assert np.array_equal(band(a["mask_geotiff"]), band(b["mask_geotiff"]))
        geojson_a, geojson_b = (json.loads(Path(r["geojson"]).read_text()) for r in (a, b))
        assert geojson_a == geojson_b
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["jobs_per_process"] == [2, 2]
    assert (summary["jobs"], summary["done"], summary["failed"]) == (4, 3, 1)
    assert not list((tmp_path / "two").glob("*.parts"))
    # resumed: every scene is finished, none runs again and no file is rewritten
    masks = {r["mask_geotiff"]: Path(r["mask_geotiff"]).stat().st_mtime_ns for r in two}
    assert main(cli_args(checkpoint, folder, tmp_path / "two", "--resume")) == 1
    assert "3 done (3 reused), 1 failed" in capsys.readouterr().err
    assert {m: Path(m).stat().st_mtime_ns for m in masks} == masks
    assert [r["objects"] for r in records(tmp_path / "two")] == [r["objects"] for r in two]


def test_a_folder_without_scenes_or_with_colliding_names_is_refused(
    tmp_path, capsys, checkpoint
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(cli_args(checkpoint, empty, tmp_path / "out")) == 2
    assert "empty: no scene files" in capsys.readouterr().err
    doubled = tmp_path / "doubled"
    doubled.mkdir()
    for name in ("a.tif", "a.png"):
        (doubled / name).write_bytes(b"")
    assert main(cli_args(checkpoint, doubled, tmp_path / "out")) == 2
    assert "a: two files share a name" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
