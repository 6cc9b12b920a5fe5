"""Stress regimes of the synthetic generator: each measurably does what it says, the default
is the benchmark as it always was, and a config selects one."""

from __future__ import annotations

import dataclasses
import json
import runpy
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from btdnet.data.synthetic import (
    REGIMES,
    generate_synthetic_rrsisd,
    get_regime,
    make_synthetic_image,
    render_scene,
    sample_scene,
)
from btdnet.task import ReferringConfig

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "make_synthetic.py"


def _scenes(regime: str, count: int = 40, size: int = 128) -> list:
    options = get_regime(regime).sample_kwargs()
    return [
        sample_scene(np.random.default_rng([5, i]), image_size=size, **options)
        for i in range(count)
    ]


def test_default_regime_is_the_benchmark_as_before() -> None:
    assert get_regime("default").sample_kwargs() == {
        "min_objects": 3,
        "max_objects": 7,
        "distractor_prob": 0.7,
        "distractor_instances": (2, 3),
        "size_scale": 1.0,
        "contrast": 1.0,
        "edge_blur": 0.0,
    }
    plain = make_synthetic_image(2, "train", 3, image_size=96)
    named = make_synthetic_image(2, "train", 3, image_size=96, regime="default")
    assert np.array_equal(plain.image, named.image) and plain.scene == named.scene
    with pytest.raises(ValueError, match="unknown synthetic regime 'nope'"):
        get_regime("nope")


def test_distractors_regime_crowds_each_scene_with_one_category() -> None:
    def largest_group(scenes: list) -> list[int]:
        return [max(Counter(o.category for o in s.objects).values()) for s in scenes]

    default, crowded = largest_group(_scenes("default")), largest_group(_scenes("distractors"))
    assert np.mean([n >= 4 for n in crowded]) >= 0.9  # 4-6 drawn; placement may drop one
    assert np.mean([n >= 4 for n in default]) <= 0.2
    assert np.mean(crowded) >= np.mean(default) + 1.5

    # the referred targets themselves have more same-category look-alikes
    def distractors_per_target(regime: str) -> float:
        counts = []
        for index in range(12):
            sample = make_synthetic_image(0, "train", index, image_size=128, regime=regime)
            per = Counter(o.category for o in sample.scene.objects)
            counts += [per[sample.scene.objects[i].category] - 1 for i in sample.expressions]
        return float(np.mean(counts))

    assert distractors_per_target("distractors") >= distractors_per_target("default") + 1.0


def _edge_stats(image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(colour gap between an object and a 2-px ring around it, mean gradient on its edge)."""
    grey = image.astype(np.float64).mean(axis=2)
    as_image = Image.fromarray(mask.astype(np.uint8) * 255)
    ring = np.asarray(as_image.filter(ImageFilter.MaxFilter(5))) > 0
    inner = np.asarray(as_image.filter(ImageFilter.MinFilter(3))) > 0
    ring &= ~mask
    edge = mask & ~inner
    gap = abs(grey[mask].mean() - grey[ring].mean())
    gy, gx = np.gradient(grey)
    return gap, float(np.hypot(gx, gy)[edge].mean())


def test_low_contrast_regime_lowers_edge_contrast_and_sharpness() -> None:
    regime = get_regime("low_contrast")
    gaps, slopes = [], []
    for scene in _scenes("default", count=12):
        sharp_image, masks = render_scene(scene)
        soft = dataclasses.replace(scene, contrast=regime.contrast, edge_blur=regime.edge_blur)
        soft_image, soft_masks = render_scene(soft)
        for mask, soft_mask in zip(masks, soft_masks):
            assert np.array_equal(mask, soft_mask)  # the ground truth is unchanged
            if mask.sum() < 30:
                continue
            (g0, s0), (g1, s1) = _edge_stats(sharp_image, mask), _edge_stats(soft_image, mask)
            if g0 > 15:  # objects that stood out from the ground to begin with
                gaps.append(g1 / g0)
                slopes.append(s1 / s0)
    assert len(gaps) >= 20
    # the object-ground gap shrinks to a third or less (35% opacity, and the blur mixes the two
    # sides of the edge) but the objects stay visible; edges lose most of their slope
    assert 0.1 <= float(np.median(gaps)) <= 0.4
    assert float(np.median(slopes)) <= 0.45


def test_tiny_regime_quarters_the_object_area() -> None:
    def mean_area(regime: str) -> float:
        areas = []
        for scene in _scenes(regime, count=15):
            areas += [int(m.sum()) for m in render_scene(scene)[1]]
        return float(np.mean(areas))

    ratio = mean_area("tiny") / mean_area("default")
    assert 0.18 <= ratio <= 0.33, ratio


def test_regime_is_recorded_and_selected_from_a_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown synthetic regime"):
        generate_synthetic_rrsisd(tmp_path / "bad", train=1, val=0, test=0, size=64, regime="x")
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    generate_synthetic_rrsisd(
        tmp_path / "tiny", train=2, val=0, test=0, size=64, regime="tiny", show_progress=False
    )
    record = json.loads((tmp_path / "tiny" / "synthetic.json").read_text())
    assert record["arguments"]["regime"] == "tiny"
    spec = {"train": 2, "val": 1, "test": 1, "size": 64, "regime": "distractors"}
    config = {"model": {"variant": "tiny"}, "data": {"root": "x", "generate_synthetic": spec}}
    assert ReferringConfig.from_config(config).data.generate_synthetic["regime"] == "distractors"
    assert set(REGIMES) == {"default", "distractors", "low_contrast", "tiny"}


def test_make_synthetic_takes_a_regime(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main = runpy.run_path(str(SCRIPT), run_name="script")["main"]
    args = ["--train", "1", "--val", "0", "--test", "0", "--size", "64", "--no-progress"]
    assert main(["--out", str(tmp_path / "a"), "--regime", "tiny", *args]) == 0
    record = json.loads((tmp_path / "a" / "synthetic.json").read_text())
    assert record["arguments"]["regime"] == "tiny"
    assert main(["--out", str(tmp_path / "b"), "--generalized", "--regime",
                                "tiny", *args]) == 2  # fmt: skip
    assert "not --generalized" in capsys.readouterr().err
