"""Row parts of a scene (btdnet.predict.scene.rows): the arrays each row must hold, counted by
hand, the checks a reused part must pass, and the uint8 probability's rounding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from btdnet.predict.scene.rows import (
    PartError,
    RowPart,
    check_part_arrays,
    expected_arrays,
    part_path,
    to_uint8_probability,
)
from btdnet.tiling import TileGrid

# 100 rows, tiles of 32 overlapping by 8: stride 24, rows of tiles start at 0, 24, 48, 72
# (the last one 28 pixels tall); 50 columns: 2 tiles per row
GRID = TileGrid(height=100, width=50, tile=32, overlap=8)


def test_each_row_holds_its_own_core_and_shared_bands_counted_by_hand() -> None:
    assert part_path(Path("p"), 7) == Path("p") / "row_000007.npz"
    first = expected_arrays(GRID, 0)
    assert first == {
        "core_mask": ((24, 50), "bool"),  # rows 0..23: only row 0 covers them
        "core_probability": ((24, 50), "uint8"),
        "counts": ((3,), "int64"),
        "bottom": ((8, 50), "float32"),  # rows 24..31, shared with row 1
    }
    middle = expected_arrays(GRID, 1)  # rows 24..55: top 24..31, core 32..47, bottom 48..55
    assert middle["top"] == ((8, 50), "float32")
    assert middle["core_mask"] == ((16, 50), "bool")
    assert middle["bottom"] == ((8, 50), "float32")
    last = expected_arrays(GRID, 3)  # rows 72..99: top 72..79, core 80..99
    assert last["top"] == ((8, 50), "float32") and "bottom" not in last
    assert last["core_mask"] == ((20, 50), "bool")
    cores = sum(expected_arrays(GRID, i)["core_mask"][0][0] for i in range(4))
    assert cores + 3 * 8 == 100  # every scene row once: cores and three shared bands
    alone = expected_arrays(TileGrid(height=20, width=50, tile=32, overlap=8), 0)
    assert alone["core_mask"] == ((20, 50), "bool") and set(alone) == {
        "core_mask",
        "core_probability",
        "counts",
    }


def _arrays(index: int, counts=(2, 1, 1)) -> dict[str, np.ndarray]:
    return {
        key: (np.array(counts, np.int64) if key == "counts" else np.zeros(shape, dtype))
        for key, (shape, dtype) in expected_arrays(GRID, index).items()
    }


def test_a_part_must_hold_exactly_its_arrays_with_possible_counts(tmp_path: Path) -> None:
    path = tmp_path / "row_000001.npz"
    expected = expected_arrays(GRID, 1)
    check_part_arrays(path, _arrays(1), expected)  # no-data + absent == tiles is possible
    check_part_arrays(path, _arrays(1, (2, 0, 0)), expected)
    missing = _arrays(1)
    del missing["top"]
    with pytest.raises(PartError, match=r"holds \['bottom', 'core_mask'"):
        check_part_arrays(path, missing, expected)
    extra = {**_arrays(1), "other": np.zeros(1)}
    with pytest.raises(PartError, match="expected"):
        check_part_arrays(path, extra, expected)
    wrong_type = {**_arrays(1), "top": np.zeros((8, 50), np.float64)}
    with pytest.raises(PartError, match=r"top is float64\[8, 50\], expected float32\[8, 50\]"):
        check_part_arrays(path, wrong_type, expected)
    wrong_shape = {**_arrays(1), "core_probability": np.zeros((16, 49), np.uint8)}
    with pytest.raises(PartError, match=r"core_probability is uint8\[16, 49\]"):
        check_part_arrays(path, wrong_shape, expected)
    for counts in ((2, -1, 0), (2, 0, -1), (-1, 0, 0), (2, 2, 1)):
        with pytest.raises(PartError, match="impossible tile counts"):
            check_part_arrays(path, _arrays(1, counts), expected)
    nan = _arrays(1)
    nan["bottom"][3, 4] = np.nan
    with pytest.raises(PartError, match="bottom holds non-finite values"):
        check_part_arrays(path, nan, expected)


def test_a_saved_part_loads_back_and_is_checked_against_the_grid(tmp_path: Path) -> None:
    arrays = _arrays(1, (2, 1, 0))
    arrays["top"][:] = 0.25
    arrays["core_mask"][3, 4] = True
    arrays["core_probability"][3, 4] = 200
    arrays["bottom"][:] = 0.75
    part = RowPart(1, arrays["top"], arrays["core_mask"], arrays["core_probability"],
                   arrays["bottom"], tiles=2, nodata=1, absent=0)  # fmt: skip
    path = part.save(tmp_path)
    assert path == tmp_path / "row_000001.npz"
    back = RowPart.load(tmp_path, 1, GRID)
    assert (back.index, back.tiles, back.nodata, back.absent) == (1, 2, 1, 0)
    for key in ("top", "core_mask", "core_probability", "bottom"):
        np.testing.assert_array_equal(getattr(back, key), arrays[key])
    first = RowPart(0, None, *(_arrays(0)[k] for k in ("core_mask", "core_probability")),
                    _arrays(0)["bottom"], tiles=2, nodata=0, absent=2)  # fmt: skip
    first.save(tmp_path)
    assert RowPart.load(tmp_path, 0, GRID).top is None
    # a part counting other tiles than the row has is refused
    part.tiles = 3
    part.nodata = 0
    part.save(tmp_path)
    with pytest.raises(PartError, match="counts 3 tiles, the row has 2"):
        RowPart.load(tmp_path, 1, GRID)
    (tmp_path / "row_000002.npz").write_bytes(b"not a zip")
    with pytest.raises(PartError, match=r"row_000002\.npz: unreadable part"):
        RowPart.load(tmp_path, 2, GRID)
    (tmp_path / "row_000003.npz").symlink_to(tmp_path / "row_000001.npz")
    with pytest.raises(PartError, match="not a regular file"):
        RowPart.load(tmp_path, 3, GRID)
    with pytest.raises(PartError, match="not a regular file"):
        RowPart.load(tmp_path, 9, GRID)  # absent


def test_uint8_probability_is_rounded_and_clipped() -> None:
    values = np.array([-0.2, 0.0, 0.5 / 255, 0.49 / 255, 254.6 / 255, 1.0, 1.3], np.float32)
    assert to_uint8_probability(values).tolist() == [0, 0, 0, 0, 255, 255, 255]
    assert to_uint8_probability(np.array([0.7 / 255, 100.5001 / 255])).tolist() == [1, 101]
