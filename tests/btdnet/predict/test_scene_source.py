"""The scene reader's resampling: ``--gsd`` reads bilinear, and the overview (the preview's
picture) shrinks by its LONGER side, on scenes whose values make a wrong choice show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

rasterio = pytest.importorskip("rasterio")
from btdnet.predict.scene.source import SceneSource  # noqa: E402

NORTH_UP = rasterio.Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5400000.0)


def write_tiff(path: Path, bands: np.ndarray) -> Path:
    profile = {"driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2]}
    profile.update(count=bands.shape[0], dtype="uint8", crs="EPSG:32633", transform=NORTH_UP)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def test_gsd_reads_the_scene_bilinear_not_nearest(tmp_path) -> None:
    # a ramp across: column j holds 10 j; at half the gsd each source pixel becomes two, and
    # bilinear reads scene column k at source column (k + 0.5) / 2 - 0.5: 5 k - 2.5 (nearest
    # would repeat 10 (k // 2): 0, 0, 10, 10, ...)
    ramp = np.broadcast_to(10 * np.arange(21, dtype=np.uint8), (3, 12, 21)).copy()
    path = write_tiff(tmp_path / "ramp.tif", ramp)
    with SceneSource(path, gsd=0.25) as source:
        assert (source.height, source.width) == (24, 42)
        rgb, valid = source.read(0, 0, 42)
    assert valid[:24, :42].all()
    row = rgb[10, 2:40, 0].astype(float)  # inside: away from the clamped edges
    expected = 5.0 * np.arange(2, 40) - 2.5
    assert np.abs(row - expected).max() <= 1.0, row
    assert (rgb[:24, :42, 1] == rgb[:24, :42, 0]).all()


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_the_overview_shrinks_a_long_scene_by_its_longer_side(tmp_path, suffix) -> None:
    # 40 x 200, left half 50, right half 150: at most 100 pixels a side gives 20 x 100 (the
    # shorter side, 40, is already under 100 and would leave the scene unshrunk)
    pixels = np.full((40, 200, 3), 50, dtype=np.uint8)
    pixels[:, 100:] = 150
    path = tmp_path / f"long{suffix}"
    if suffix == ".tif":
        write_tiff(path, pixels.transpose(2, 0, 1).copy())
    else:
        Image.fromarray(pixels).save(path)
    with SceneSource(path) as source:
        overview = source.overview(100)
        assert overview.shape == (20, 100, 3)
        assert (overview[:, :48] == 50).all() and (overview[:, 52:] == 150).all()
        assert source.overview(400).shape == (40, 200, 3)  # never enlarged
