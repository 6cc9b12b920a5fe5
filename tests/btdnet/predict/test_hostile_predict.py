"""Hostile input to the predictor and ``btdnet-predict``: bad bytes, links, failures, odd args."""

from __future__ import annotations

import json
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from btdnet.predict.cli import main
from btdnet.predict.predictor import Predictor
from btdnet.raster.image_io import ImageTooLargeError, bands_to_rgb, read_image

ERROR = "btdnet-predict: error: "


def _png(path: Path, height: int = 21, width: int = 27) -> Path:
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _cli(capsys, *args) -> tuple[int, list[dict], list[str]]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    return code, records, [line for line in err.splitlines() if line.strip()]


def _prompts(tmp_path: Path, texts: list[str]) -> Path:
    _png(tmp_path / "scene.png")
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"image": "scene.png", "text": t}) + "\n" for t in texts))
    return path


# ---------------------------------------------------------------- item 3: one bad byte


def test_non_utf8_line_is_skipped_alone(tmp_path, capsys, checkpoint) -> None:
    prompts = _prompts(tmp_path, ["a road"])
    with prompts.open("ab") as handle:
        handle.write(b'{"image": "scene.png", "text": "caf\xe9 roof"}\n')
        handle.write(b'{"image": "scene.png", "text": "a river"}\n')
    code, records, errors = _cli(
        capsys, "--checkpoint", checkpoint, "--prompts", prompts, "--out", tmp_path / "o",
        "--device", "cpu", "--no-progress",
    )  # fmt: skip
    assert code == 1
    assert [r["text"] for r in records] == ["a road", "a river"]
    assert errors == [f"{ERROR}{prompts}:2: not UTF-8 text (byte 0xe9 at column 36)"]


# ---------------------------------------------------------------- item 8: old outputs kept


def test_bad_checkpoint_keeps_the_last_runs_predictions(tmp_path, capsys) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "predictions.jsonl").write_text('{"old": 1}\n')
    broken = tmp_path / "ckpt"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    code, _, errors = _cli(
        capsys, "--checkpoint", broken, "--image", _png(tmp_path / "a.png"), "--text", "x",
        "--out", out, "--device", "cpu",
    )  # fmt: skip
    assert code == 2 and len(errors) == 1 and str(broken) in errors[0]
    assert (out / "predictions.jsonl").read_text() == '{"old": 1}\n'


def test_symlinked_outputs_are_refused_and_targets_untouched(tmp_path, capsys, checkpoint):
    out = tmp_path / "o"
    out.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (out / "predictions.jsonl").symlink_to(target)
    image = _png(tmp_path / "a.png")
    code, _, errors = _cli(
        capsys, "--checkpoint", checkpoint, "--image", image, "--text", "the road",
        "--out", out, "--device", "cpu",
    )  # fmt: skip
    assert code == 2 and "symbolic link" in errors[0] and "predictions.jsonl" in errors[0]
    assert target.read_text() == "keep me"
    # A link planted at a mask's name is refused too: the prompt fails, the target stays.
    (out / "predictions.jsonl").unlink()
    (out / "a__1_the-road.png").symlink_to(target)
    code, records, errors = _cli(
        capsys, "--checkpoint", checkpoint, "--image", image, "--text", "the road",
        "--out", out, "--device", "cpu",
    )  # fmt: skip
    assert code == 2 and "symbolic link" in errors[0] and records == []
    assert target.read_text() == "keep me"


# ---------------------------------------------------------------- item 5: any failure, one line


def test_memory_error_of_one_prompt_leaves_the_batch_running(
    tmp_path, capsys, checkpoint, monkeypatch
) -> None:
    original = Predictor.predict

    def predict(self, text, **kwargs):
        if any("boom" in t for t in text):
            raise MemoryError()
        return original(self, text, **kwargs)

    monkeypatch.setattr(Predictor, "predict", predict)
    prompts = _prompts(tmp_path, ["a road", "boom", "a roof"])
    code, records, errors = _cli(
        capsys, "--checkpoint", checkpoint, "--prompts", prompts, "--out", tmp_path / "o",
        "--device", "cpu", "--batch-size", "1", "--no-progress",
    )  # fmt: skip
    assert code == 1 and [r["text"] for r in records] == ["a road", "a roof"]
    assert errors == [f"{ERROR}{prompts}:2: prediction failed (MemoryError)"]


def test_failed_write_leaves_no_file_without_record(tmp_path, capsys, checkpoint, monkeypatch):
    import btdnet.predict.outputs as outputs

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(outputs, "render_overlay", no_memory)
    prompts = _prompts(tmp_path, ["a road"])
    out = tmp_path / "o"
    code, records, errors = _cli(
        capsys, "--checkpoint", checkpoint, "--prompts", prompts, "--out", out,
        "--device", "cpu", "--no-progress",
    )  # fmt: skip
    assert code == 1 and records == [] and "MemoryError" in errors[0]
    assert sorted(p.name for p in out.iterdir()) == ["predictions.jsonl"]


def test_pixel_limit_points_to_tile(tmp_path, capsys, checkpoint) -> None:
    image = _png(tmp_path / "big.png", height=40, width=50)
    with pytest.raises(ImageTooLargeError, match="--tile"):
        read_image(image, max_pixels=1999)
    at_limit = read_image(image, max_pixels=2000).pixels  # 40 x 50 = 2000: read, unchanged
    np.testing.assert_array_equal(at_limit, np.asarray(Image.open(image).convert("RGB")))
    code, records, errors = _cli(
        capsys, "--checkpoint", checkpoint, "--image", image, "--text", "the road",
        "--out", tmp_path / "o", "--device", "cpu", "--max-pixels", "1999",
    )  # fmt: skip
    assert code == 2 and records == [] and len(errors) == 1
    assert str(image) in errors[0] and "--tile" in errors[0]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_pixel_limit_is_the_same_for_rasterio(tmp_path) -> None:
    rasterio = pytest.importorskip("rasterio")
    path = tmp_path / "big.tif"
    profile = {"driver": "GTiff", "height": 40, "width": 50, "count": 3, "dtype": "uint8"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((3, 40, 50), dtype=np.uint8))
    with pytest.raises(ImageTooLargeError, match="--tile"):
        read_image(path, max_pixels=1999)


# ---------------------------------------------------------------- item 9 + minor: arguments


@pytest.fixture(scope="module")
def predictor(checkpoint) -> Predictor:
    predictor = Predictor.from_pretrained(checkpoint, device="cpu")
    predictor.set_image(np.zeros((9, 11, 3), dtype=np.uint8))
    return predictor


@pytest.mark.parametrize("size", [-1, 0])
def test_predict_refuses_bad_batch_size(predictor, size) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        predictor.predict(["the road"], batch_size=size)


def test_predict_refuses_non_int_batch_size(predictor) -> None:
    with pytest.raises(TypeError, match="batch_size"):
        predictor.predict(["the road"], batch_size=1.5)


@pytest.mark.parametrize("text", ["\u200b", " \u200b\u200d\ufeff ", "\u2060\t"])
def test_invisible_text_is_refused(predictor, text) -> None:
    with pytest.raises(ValueError, match="empty"):
        predictor.predict(text)


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 5, 3), (4, 0)])
def test_empty_image_array_is_refused(predictor, shape) -> None:
    with pytest.raises(ValueError, match="empty"):
        predictor.set_image(np.zeros(shape, dtype=np.uint8))


def test_long_prompt_prints_no_stray_line(predictor, capfd) -> None:
    # transformers logs "Token indices sequence length ..." through its own handler, bound to
    # whatever sys.stderr was when transformers was imported (under pytest, possibly a capture
    # that capfd does not see): listen on its logger itself, and forget that this tokenizer
    # already warned once (it warns once per instance)
    logged: list[str] = []

    class Listener(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    listener = Listener(logging.WARNING)
    hf_logger = logging.getLogger("transformers")
    hf_logger.addHandler(listener)
    predictor.model.tokenizer.deprecation_warnings.clear()
    try:
        with pytest.warns(UserWarning, match="truncated"):
            predictor.predict("the road " * 400)
    finally:
        hf_logger.removeHandler(listener)
    out, err = capfd.readouterr()
    assert "Token indices sequence length" not in out + err + "\n".join(logged)


# ---------------------------------------------------------------- item 4: deep PNGs


def _png16(path: Path, samples: np.ndarray) -> Path:
    """Write (H, W, C) uint16 samples as a 16-bit PNG (colour type 2 or 6), Paeth-filtered."""
    height, width, channels = samples.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = samples.astype(">u2").reshape(height, -1).view(np.uint8)  # (H, W*C*2) bytes
    bpp = channels * 2
    raw = b""
    for y in range(height):
        raw += b"\x04" + _paeth_filter(rows[y], rows[y - 1] if y else None, bpp)
    colour = {3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


def _paeth_filter(row: np.ndarray, prev: np.ndarray | None, bpp: int) -> bytes:
    up = np.zeros_like(row) if prev is None else prev
    out = bytearray(len(row))
    for i in range(len(row)):
        a = int(row[i - bpp]) if i >= bpp else 0
        b = int(up[i])
        c = int(up[i - bpp]) if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out[i] = (int(row[i]) - pred) % 256
    return bytes(out)


@pytest.mark.parametrize("channels", [3, 4])
def test_12_bit_data_in_a_16_bit_png_is_read_at_full_depth(tmp_path, channels) -> None:
    rng = np.random.default_rng(2)
    samples = rng.integers(0, 4096, (13, 17, channels), dtype=np.uint16)  # 12-bit data
    pixels = read_image(_png16(tmp_path / "deep.png", samples)).pixels
    expected = bands_to_rgb(samples[..., :3].transpose(2, 0, 1))  # as the GeoTIFF path does
    np.testing.assert_array_equal(pixels, expected)
    assert pixels.mean() > 100  # the top byte alone would be 0..15: near-black


# ---------------------------------------------------------------- minor: NaN checkpoint


def test_all_nan_checkpoint_warns_on_one_line(tmp_path, capsys) -> None:
    import torch

    from btdnet.models import build_model
    from btdnet.models.serialization import NonFiniteWeightsWarning

    model = build_model("tiny", pretrained=False)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan")
    with pytest.warns(NonFiniteWeightsWarning, match=r"nan/model\.safetensors: \d+ of \d+"):
        Predictor.from_pretrained(tmp_path / "nan", device="cpu")
    code, _, errors = _cli(
        capsys, "--checkpoint", tmp_path / "nan", "--image", _png(tmp_path / "a.png"),
        "--text", "the road", "--out", tmp_path / "o", "--device", "cpu",
    )  # fmt: skip
    assert code == 0
    warning_lines = [line for line in errors if "warning:" in line]
    assert len(warning_lines) == 1 and "NaN" in warning_lines[0]
