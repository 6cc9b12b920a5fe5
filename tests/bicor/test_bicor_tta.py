"""Test-time augmentation: the views of the authors' scripts, each mapped back exactly."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from bicor.tta import AUTHORS_TTA, TestTimeAugment, parse_tta_spec

ROOT = Path(__file__).resolve().parents[2]


def test_view_counts_of_the_authors_settings():
    vaihingen = TestTimeAugment(
        hflip=True, vflip=True, rot90=True, scales=(0.5, 0.75, 1, 1.25, 1.5)
    )
    loveda = TestTimeAugment(hflip=True, scales=(0.75, 1.0, 1.25, 1.5))
    potsdam = TestTimeAugment(hflip=True, vflip=True)
    assert (vaihingen.num_views, loveda.num_views, potsdam.num_views) == (40, 8, 4)
    assert len(vaihingen.views()) == 40 and vaihingen.views()[0] == (False, False, False, 0.5)
    assert TestTimeAugment().num_views == 1


def test_an_equivariant_model_is_unchanged_by_flips_and_rotations():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 10)

    def pointwise(batch):  # per-pixel: commutes with every flip and rotation
        return torch.cat([batch.sum(1, keepdim=True), batch[:, :1] * 2], dim=1)

    tta = TestTimeAugment(hflip=True, vflip=True, rot90=True)
    torch.testing.assert_close(tta(pointwise, x), pointwise(x))


def test_each_view_is_undone_in_reverse_order():
    x = torch.arange(2 * 6, dtype=torch.float32).reshape(1, 1, 2, 6)
    seen = []

    def position(batch):  # logits = the column index of the view the model was shown
        seen.append(tuple(batch.shape[-2:]))
        cols = torch.arange(batch.shape[-1], dtype=torch.float32)
        return cols.expand(batch.shape[0], 1, *batch.shape[-2:]).clone()

    out = TestTimeAugment(rot90=True)(position, x)
    assert seen == [(2, 6), (6, 2)]  # the rotated view is 6 x 2
    # identity: column j; rotated 90 degrees counter-clockwise and back: row i -> column i
    expected = (torch.arange(6.0).expand(2, 6) + torch.tensor([[0.0], [1.0]])) / 2
    torch.testing.assert_close(out[0, 0], expected)


def test_scales_resize_bicubic_and_come_back_to_the_input_size():
    x = torch.randn(1, 3, 20, 12)
    shapes = []

    def identity(batch):
        shapes.append(tuple(batch.shape[-2:]))
        return batch[:, :2]

    out = TestTimeAugment(scales=(0.5, 1.0, 1.5))(identity, x)
    assert shapes == [(10, 6), (20, 12), (30, 18)]
    assert out.shape == (1, 2, 20, 12)

    def there_and_back(s):
        down = F.interpolate(x, size=(round(20 * s), round(12 * s)), mode="bicubic")
        return F.interpolate(down, size=(20, 12), mode="bicubic")[:, :2]

    expected = (there_and_back(0.5) + x[:, :2] + there_and_back(1.5)) / 3
    torch.testing.assert_close(out, expected)


def test_config_section_is_checked():
    tta = TestTimeAugment.from_config({"hflip": True, "scales": [0.75, 1.0]})
    assert tta == TestTimeAugment(hflip=True, scales=(0.75, 1.0))
    assert TestTimeAugment.from_config(None) == TestTimeAugment()
    with pytest.raises(ValueError, match=r"unknown eval\.tta keys"):
        TestTimeAugment.from_config({"flip": True})
    with pytest.raises(ValueError, match="positive"):
        TestTimeAugment(scales=(0.0,))


def test_benchmark_words_and_the_authors_settings():
    assert parse_tta_spec(None) == TestTimeAugment()
    assert parse_tta_spec("flips") == TestTimeAugment(hflip=True, vflip=True)
    assert parse_tta_spec("rot90, hflip", [0.5, 1]) == TestTimeAugment(
        hflip=True, rot90=True, scales=(0.5, 1.0)
    )
    assert parse_tta_spec(None, [0.75, 1.25]).num_views == 2
    assert parse_tta_spec("authors", dataset="vaihingen").num_views == 40
    assert parse_tta_spec("authors", dataset="potsdam").describe() == {
        "hflip": True,
        "vflip": True,
        "rot90": False,
        "scales": [1.0],
        "views": 4,
    }
    # the configs name 'd4': for Potsdam, test_potsdam.py -t d4 = h x v flips x 4 scales
    assert parse_tta_spec("authors-d4", dataset="potsdam") == TestTimeAugment(
        hflip=True, vflip=True, scales=(0.75, 1.0, 1.25, 1.5)
    )
    assert parse_tta_spec("authors-d4", dataset="potsdam").num_views == 16
    assert parse_tta_spec("authors-d4", dataset="vaihingen").num_views == 40
    with pytest.raises(ValueError, match=r"unknown word\(s\) \['d4'\]"):
        parse_tta_spec("d4")
    with pytest.raises(ValueError, match="stands alone"):
        parse_tta_spec("authors", [0.5], dataset="loveda")
    with pytest.raises(ValueError, match="not synthetic_seg"):
        parse_tta_spec("authors", dataset="synthetic_seg")


@pytest.mark.parametrize("name", sorted(AUTHORS_TTA))
def test_the_dataset_configs_use_the_authors_tta(name):
    config = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    assert TestTimeAugment.from_config(config["eval"]["tta"]) == AUTHORS_TTA[name]


def test_negative_or_missing_scales_are_refused():
    for scales in ((-0.5,), (1.0, -1.0), ()):
        with pytest.raises(ValueError, match="positive"):
            TestTimeAugment(scales=scales)
