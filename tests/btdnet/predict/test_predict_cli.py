"""``btdnet-predict`` end to end on tiny random-weight checkpoints: PNG and GeoTIFF in, files
and JSON lines out, batch files with bad lines, and one clear line for each bad input."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from btdnet.models import build_model
from btdnet.predict.cli import main

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("rasterio.warp")

REPO = Path(__file__).resolve().parents[3]
ERROR = "btdnet-predict: error: "
TRANSFORM = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5400000.0)  # 0.5 m, UTM 33N
RECORD_TYPES = {
    "image": str,
    "text": str,
    "score": float,
    "area": int,
    "truncated": bool,
    "mask": str,
    "overlay": str,
}


@pytest.fixture(scope="module")
def full_checkpoint(tmp_path_factory):
    """A tiny model whose target logit is large everywhere: its mask is the whole image."""
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False)
    with torch.no_grad():
        model.decoder.target_head.bias.add_(100.0)
    folder = tmp_path_factory.mktemp("full_checkpoint")
    model.save_pretrained(folder)
    return folder


def write_png(path: Path, height: int = 45, width: int = 61) -> Path:
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def write_geotiff(path: Path, height: int = 40, width: int = 50) -> Path:
    bands = np.random.default_rng(1).integers(0, 256, (3, height, width), dtype=np.uint8)
    profile = {"driver": "GTiff", "height": height, "width": width, "count": 3}
    profile.update(dtype="uint8", crs="EPSG:32633", transform=TRANSFORM)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def run_cli(capsys, *args) -> tuple[int, list[dict], list[str]]:
    """Run main(); return the exit code, the JSON lines of stdout and the stderr lines."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    return code, records, [line for line in captured.err.splitlines() if line.strip()]


def check_record(record: dict) -> None:
    for key, kind in RECORD_TYPES.items():
        assert isinstance(record[key], kind), (key, record[key])
    bbox = record["bbox"]
    assert bbox is None or (len(bbox) == 4 and all(isinstance(v, int) for v in bbox))
    assert Path(record["mask"]).is_file() and Path(record["overlay"]).is_file()


def test_png_end_to_end(tmp_path, capsys, checkpoint):
    image = write_png(tmp_path / "scene.png")
    out = tmp_path / "out"
    code, records, errors = run_cli(
        capsys, "--checkpoint", checkpoint, "--image", image, "--text", "the red roof",
        "--text", "the road", "--out", out, "--device", "cpu",
    )  # fmt: skip
    assert code == 0 and errors == []
    assert [r["text"] for r in records] == ["the red roof", "the road"]
    saved = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert saved == records
    assert records[0]["mask"] == str(out / "scene__1_the-red-roof.png")
    assert records[1]["overlay"] == str(out / "scene__2_the-road_overlay.png")
    for record in records:
        check_record(record)
        assert record["image"] == str(image) and "mask_geotiff" not in record
        mask = np.asarray(Image.open(record["mask"]))
        assert mask.shape == (45, 61) and set(np.unique(mask)) <= {0, 255}
        assert int((mask == 255).sum()) == record["area"]
        width, height = Image.open(record["overlay"]).size
        assert width == 61 * 9 and height > 45 * 9  # enlarged x9 to >= 512 px, caption above
    assert not list(out.glob("*.tif")) and not list(out.glob("*.geojson"))


def test_geotiff_end_to_end(tmp_path, capsys, full_checkpoint):
    image = write_geotiff(tmp_path / "geo.tif")
    out = tmp_path / "out"
    code, records, errors = run_cli(
        capsys, "--checkpoint", full_checkpoint, "--image", image, "--text", "the field",
        "--out", out, "--device", "cpu",
    )  # fmt: skip
    assert code == 0 and errors == []
    (record,) = records
    check_record(record)
    assert record["area"] == 40 * 50 and record["bbox"] == [0, 0, 50, 40]
    assert record["mask_geotiff"] == str(out / "geo__1_the-field.tif")
    assert Image.open(record["mask"]).size == (50, 40)
    with rasterio.open(image) as src, rasterio.open(record["mask_geotiff"]) as mask:
        assert mask.crs == src.crs and mask.crs.to_epsg() == 32633
        assert mask.transform == src.transform
        assert (mask.height, mask.width, mask.count) == (40, 50, 1)
        assert (mask.read(1) == 255).all()
        left, bottom, right, top = src.bounds
    collection = json.loads(Path(record["geojson"]).read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 1
    assert "crs" not in collection  # RFC 7946: longitude/latitude
    ring = np.asarray(collection["features"][0]["geometry"]["coordinates"][0])
    xs, ys = [left, right, right, left], [top, top, bottom, bottom]  # the image's corners
    lon, lat = rasterio.warp.transform("EPSG:32633", "EPSG:4326", xs, ys)
    corners = {(round(x, 9), round(y, 9)) for x, y in zip(lon, lat)}
    assert {(round(x, 9), round(y, 9)) for x, y in ring} == corners
    assert collection["features"][0]["properties"]["text"] == "the field"


def test_batch_file_skips_bad_lines_and_completes_the_rest(tmp_path, capsys, checkpoint):
    write_png(tmp_path / "scene.png")
    write_geotiff(tmp_path / "geo.tif")
    lines = [
        '{"image": "scene.png", "text": "the red roof"}',
        "{not json",
        '{"image": "missing.png", "text": "a car"}',
        '{"image": "scene.png", "text": "   "}',
        "",
        '{"image": "geo.tif", "text": "the field"}',
        '{"image": "geo.tif"}',
        '{"image": "scene.png", "text": "the road"}',
    ]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    code, records, errors = run_cli(
        capsys, "--checkpoint", checkpoint, "--prompts", prompts, "--out", out,
        "--device", "cpu", "--no-progress",
    )  # fmt: skip
    assert code == 1
    assert [r["text"] for r in records] == ["the red roof", "the field", "the road"]
    assert records[0]["image"] == str(tmp_path / "scene.png")
    assert records[1]["mask_geotiff"] == str(out / "geo__6_the-field.tif")
    assert records[2]["mask"] == str(out / "scene__8_the-road.png")
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3
    assert len(errors) == 4 and all(line.startswith(ERROR) for line in errors)
    joined = "\n".join(errors)
    assert f"{prompts}:2: not valid JSON" in joined
    assert f"{prompts}:3: " in joined and "missing.png: image file not found" in joined
    assert f"{prompts}:4: empty text" in joined
    assert f'{prompts}:7: "text" is missing' in joined


def test_batch_with_progress_bar(tmp_path, capsys, checkpoint):
    write_png(tmp_path / "scene.png")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"image": "scene.png", "text": "a"}\n{"image": "scene.png", "text": "b"}\n')
    code, records, errors = run_cli(
        capsys, "--checkpoint", checkpoint, "--prompts", prompts, "--out", tmp_path / "o",
        "--device", "cpu", "--batch-size", "1",
    )  # fmt: skip
    assert code == 0 and len(records) == 2
    assert not any(line.startswith(ERROR) for line in errors)
    # the bar is drawn on stderr, counts prompts, and ends at 2 of 2
    bar = [line for line in errors if "prompt" in line and "|" in line]
    assert bar, errors
    assert "2/2" in bar[-1] and "100%" in bar[-1]
    # --no-progress draws none
    code, records, errors = run_cli(
        capsys, "--checkpoint", checkpoint, "--prompts", prompts, "--out", tmp_path / "o2",
        "--device", "cpu", "--batch-size", "1", "--no-progress",
    )  # fmt: skip
    assert code == 0 and len(records) == 2
    assert not any("2/2" in line for line in errors)


def test_long_text_warns_and_is_truncated(tmp_path, capsys, checkpoint):
    image = write_png(tmp_path / "scene.png")
    long_text = "the small white car parked next to the long grey building " * 4
    code, records, errors = run_cli(
        capsys, "--checkpoint", checkpoint, "--image", image, "--text", long_text,
        "--out", tmp_path / "out", "--device", "cpu",
    )  # fmt: skip
    assert code == 0 and records[0]["truncated"] is True
    assert len(errors) == 1 and errors[0].startswith("btdnet-predict: warning: ")
    assert "truncated" in errors[0] and "limit of" in errors[0]


def _bad_checkpoints(tmp_path: Path, checkpoint: Path) -> tuple[Path, Path]:
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((checkpoint / "config.json").read_text())
    bicor = tmp_path / "bicor"
    bicor.mkdir()
    config = json.loads((checkpoint / "config.json").read_text())
    (bicor / "config.json").write_text(json.dumps({**config, "model_type": "bicor"}))
    (bicor / "model.safetensors").write_bytes((checkpoint / "model.safetensors").read_bytes())
    return no_weights, bicor


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_checkpoint", "checkpoint folder not found"),
        ("no_weights", "no model.safetensors"),
        ("bicor", "is a BiCoR-Seg closed-set checkpoint"),
        ("missing_image", "nope.png: image file not found"),
        ("unreadable_image", "broken.png: cannot read image"),
        ("empty_text", "--text number 1 is empty"),
        ("unwritable_out", "output folder is not writable"),
        ("no_text", "--image needs at least one --text"),
        ("prompts_and_image", "--prompts cannot be combined"),
        ("unknown_option", "unrecognized arguments: --frobnicate"),
        ("missing_prompts_file", "cannot read the prompts file"),
        ("bad_device", "unknown device 'tpu9'"),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path, capsys, checkpoint, case, message):
    image = write_png(tmp_path / "scene.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "a_file").write_text("x")
    no_weights, bicor = _bad_checkpoints(tmp_path, checkpoint)
    common = {"--checkpoint": checkpoint, "--image": image, "--text": "the red roof"}
    common.update({"--out": tmp_path / "out", "--device": "cpu"})
    changes = {
        "missing_checkpoint": {"--checkpoint": tmp_path / "no_such_folder"},
        "no_weights": {"--checkpoint": no_weights},
        "bicor": {"--checkpoint": bicor},
        "missing_image": {"--image": tmp_path / "nope.png"},
        "unreadable_image": {"--image": tmp_path / "broken.png"},
        "empty_text": {"--text": "  "},
        "unwritable_out": {"--out": tmp_path / "a_file" / "out"},
        "no_text": {"--text": None},
        "prompts_and_image": {"--prompts": tmp_path / "p.jsonl"},
        "unknown_option": {"--frobnicate": "1"},
        "missing_prompts_file": {"--image": None, "--text": None, "--prompts": tmp_path / "p"},
        "bad_device": {"--device": "tpu9"},
    }[case]
    options = {**common, **changes}
    args = [
        str(item) for key, value in options.items() if value is not None for item in (key, value)
    ]
    code, records, errors = run_cli(capsys, *args)
    assert code == 2 and records == []
    assert len(errors) == 1, errors
    assert errors[0].startswith(ERROR) and message in errors[0], errors[0]


def test_script_and_console_script(tmp_path, capsys, monkeypatch):
    script = REPO / "scripts" / "predict.py"
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "AS A WHOLE" in result.stdout
    assert "--prompts" in result.stdout and "--amp" in result.stdout
    console = Path(sys.executable).parent / "btdnet-predict"
    if console.exists():
        result = subprocess.run([str(console), "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "AS A WHOLE" in result.stdout
    image = write_png(tmp_path / "scene.png")
    argv = ["predict.py", "--checkpoint", str(tmp_path / "none"), "--image", str(image)]
    monkeypatch.setattr(sys, "argv", [*argv, "--text", "a", "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"{ERROR}{tmp_path / 'none'}: checkpoint folder not found"]


def test_failed_prediction_is_one_line_and_the_rest_completes(
    tmp_path, capsys, checkpoint, monkeypatch
):
    from btdnet.predict.predictor import Predictor

    original = Predictor.predict

    def failing_predict(self, text, **kwargs):
        if "boom" in text:
            raise RuntimeError("CUDA out of memory.\nTried to allocate 9 GiB")
        return original(self, text, **kwargs)

    monkeypatch.setattr(Predictor, "predict", failing_predict)
    write_png(tmp_path / "scene.png")
    prompts = tmp_path / "prompts.jsonl"
    lines = [{"image": "scene.png", "text": t} for t in ("a road", "boom", "a roof")]
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, records, errors = run_cli(
        capsys, "--checkpoint", checkpoint, "--prompts", prompts, "--out", tmp_path / "o",
        "--device", "cpu", "--batch-size", "1", "--no-progress",
    )  # fmt: skip
    assert code == 1 and [r["text"] for r in records] == ["a road", "a roof"]
    assert errors == [
        f"{ERROR}{prompts}:2: prediction failed (CUDA out of memory. Tried to allocate 9 GiB)"
    ]
