"""``btdnet-predict`` cases that gave a traceback: each now has its documented exit code and
one line (a prompts line nested 200,000 deep, an output folder that cannot be written)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from btdnet.predict import reporting
from btdnet.predict.cli import main

ERROR = "btdnet-predict: error: "


def _png(path: Path) -> Path:
    rgb = np.random.default_rng(0).integers(0, 256, (21, 27, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _cli(capsys, *args) -> tuple[int, list[dict], list[str]]:
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    return status, records, [line for line in err.splitlines() if line.strip()]


def test_deeply_nested_prompts_line_loses_only_that_line(tmp_path, capsys, checkpoint) -> None:
    _png(tmp_path / "scene.png")
    good = json.dumps({"image": "scene.png", "text": "a river"})
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(good + "\n" + "[" * 200_000 + "]" * 200_000 + "\n" + good + "\n")
    out = tmp_path / "out"
    status, records, err = _cli(
        capsys, "--checkpoint", checkpoint, "--prompts", prompts, "--out", out, "--no-progress"
    )
    assert status == 1
    assert [r["text"] for r in records] == ["a river", "a river"]  # lines 1 and 3
    assert err == [f"{ERROR}{prompts}:2: JSON nested too deeply"]


def _unwritable(monkeypatch) -> None:
    """Make writing into any folder fail as it does for a non-root user in a read-only one."""

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(reporting.tempfile, "mkstemp", refuse)


@pytest.mark.parametrize("scene", [False, True])
def test_read_only_output_folder_is_exit_2_before_the_model_loads(
    tmp_path, capsys, monkeypatch, scene
) -> None:
    image = _png(tmp_path / "scene.png")
    out = tmp_path / "out"
    out.mkdir()
    _unwritable(monkeypatch)
    missing = tmp_path / "no-checkpoint"  # the model would fail to load: it is never loaded
    argv = ["--checkpoint", missing, "--image", image, "--text", "a river", "--out", out]
    status, records, err = _cli(capsys, *argv, *(["--tile", "auto"] if scene else []))
    assert (status, records) == (2, [])
    assert err == [f"{ERROR}{out}: output folder is not writable (Permission denied)"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_for_a_real_user(tmp_path, capsys, checkpoint) -> None:
    image = _png(tmp_path / "scene.png")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        argv = ["--checkpoint", checkpoint, "--image", image, "--text", "a", "--out", out]
        status, _, err = _cli(capsys, *argv)
    finally:
        out.chmod(0o755)
    assert status == 2 and err == [
        f"{ERROR}{out}: output folder is not writable (Permission denied)"
    ]


def test_pixel_limit_of_one_is_not_reported_as_zero(tmp_path) -> None:
    from btdnet.raster.image_io import ImageTooLargeError, read_image

    path = _png(tmp_path / "small.png")
    with pytest.raises(ImageTooLargeError) as caught:
        read_image(path, max_pixels=1)
    assert "27x21 is 567 pixels, above the limit of 1 pixel;" in str(caught.value)


def test_complex_tiff_is_read_as_amplitude_without_a_warning(tmp_path, recwarn) -> None:
    rasterio = pytest.importorskip("rasterio")
    from btdnet.raster.image_io import read_image
    from btdnet.raster.source import SceneSource

    amplitude = np.linspace(1.0, 100.0, 40 * 50).reshape(40, 50)
    samples = (amplitude * np.exp(1j * np.linspace(0, 6.0, 40 * 50).reshape(40, 50))).astype(
        np.complex64
    )
    path = tmp_path / "slc.tif"
    profile = {"driver": "GTiff", "height": 40, "width": 50, "count": 1, "dtype": "complex64"}
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(samples[None])
    whole = read_image(path).pixels[..., 0].astype(int)  # (H, W)
    assert whole[0, 0] == 0 and whole[-1, -1] == 255  # 2-98 % stretch of the amplitude
    assert (np.diff(whole.ravel()) >= 0).all()  # it grows with the amplitude, not the phase
    with SceneSource(path) as source:
        rgb, valid = source.read(0, 0, 32)
    assert valid.all() and (np.diff(rgb[0, :, 0].astype(int)) >= 0).all()
    assert [str(w.message) for w in recwarn if "omplex" in str(w.message)] == []
