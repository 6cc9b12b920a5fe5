"""The scene reader's resampling: ``--gsd`` reads bilinear, and the overview (the preview's
picture) shrinks by its LONGER side, on scenes whose values make a wrong choice show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

rasterio = pytest.importorskip("rasterio")
from btdnet.raster.source import SceneSource  # noqa: E402

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


def test_a_png_scene_is_windowed_padded_and_all_valid(tmp_path) -> None:
    # 5 x 7 picture whose values tell every pixel apart; a 6 x 6 window at (2, 4) holds rows
    # 2..4 and columns 4..6, the rest reflected (row 5 reads row 3, column 7 reads column 5)
    pixels = (np.arange(35, dtype=np.uint8).reshape(5, 7) * 7)[:, :, None].repeat(3, axis=2)
    path = tmp_path / "small.png"
    Image.fromarray(pixels).save(path)
    with SceneSource(path) as source:
        assert (source.height, source.width, source.geo, source.source_gsd) == (5, 7, None, None)
        rgb, valid = source.read(2, 4, 6)
        np.testing.assert_array_equal(rgb[:3, :3], pixels[2:5, 4:7])
        np.testing.assert_array_equal(rgb[3, :3], pixels[3, 4:7])  # reflected about row 4
        np.testing.assert_array_equal(rgb[:3, 3], pixels[2:5, 5])  # reflected about column 6
        expected = np.zeros((6, 6), dtype=bool)
        expected[:3, :3] = True
        np.testing.assert_array_equal(valid, expected)
        np.testing.assert_array_equal(source.valid_rows(1, 3), np.ones((3, 7), dtype=bool))
        with pytest.raises(Exception, match="--gsd needs a georeferenced GeoTIFF"):
            SceneSource(path, gsd=1.0)


def test_a_one_pixel_wide_scene_is_padded_by_its_edge(tmp_path) -> None:
    column = np.array([10, 20, 30], dtype=np.uint8)[:, None, None].repeat(3, axis=2)
    path = tmp_path / "thin.png"
    Image.fromarray(column).save(path)
    with SceneSource(path) as source:
        rgb, valid = source.read(0, 0, 4)
    # one pixel cannot be reflected: the window repeats the edge pixels, along both axes
    assert rgb[:, :, 0].tolist() == [[10] * 4, [20] * 4, [30] * 4, [30] * 4]
    assert valid.tolist() == [[True, False, False, False]] * 3 + [[False] * 4]


def test_missing_scenes_and_non_positive_gsd_are_refused_naming_the_file(tmp_path) -> None:
    from btdnet.raster.source import SceneReadError

    with pytest.raises(SceneReadError, match=r"nowhere\.tif: image file not found"):
        SceneSource(tmp_path / "nowhere.tif")
    with pytest.raises(SceneReadError, match="image file is not a file"):
        SceneSource(tmp_path)
    path = write_tiff(tmp_path / "scene.tif", np.zeros((3, 8, 8), np.uint8))
    for gsd in (0.0, -0.5):
        with pytest.raises(SceneReadError, match=f"--gsd must be a positive number, got {gsd}"):
            SceneSource(path, gsd=gsd)
    with SceneSource(path, gsd=1.0) as source:  # 0.5 m pixels read at 1 m: half the side
        assert (source.height, source.width) == (4, 4)
        assert source.geo.transform[:6] == (1.0, 0.0, 500000.0, 0.0, -1.0, 5400000.0)
        assert source.source_gsd == 0.5


def test_gsd_on_a_tiff_without_a_georeference_is_refused(tmp_path) -> None:
    from btdnet.raster.source import SceneReadError

    path = tmp_path / "plain.tif"
    profile = {"driver": "GTiff", "height": 8, "width": 8, "count": 3, "dtype": "uint8"}
    with (
        pytest.warns(rasterio.errors.NotGeoreferencedWarning),
        rasterio.open(path, "w", **profile) as dst,
    ):
        dst.write(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(SceneReadError, match=r"plain\.tif: --gsd needs a georeferenced GeoTIFF"):
        SceneSource(path, gsd=1.0)
