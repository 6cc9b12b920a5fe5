"""Closed-set benchmark (scripts/benchmark.py --task seg) and the heatmap pictures command."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from bicor.benchmark import format_seg_markdown
from bicor.data.synthetic_seg import SyntheticSegDataset, write_synthetic_seg
from bicor.heatmaps import colorize, save_heatmaps
from bicor.models import build_bicor, load_bicor
from tests.closed_set_reference import reference_scores

REPO = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seg_args(checkpoint: Path) -> list[str]:
    """The benchmark arguments every closed-set test starts with: the tiny checkpoint, val split."""
    return [
        "--task=seg",
        f"--checkpoint={checkpoint / 'ckpt'}",
        "--dataset=synthetic_seg",
        f"--root={checkpoint / 'data'}",
        "--split=val",
    ]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bicor")
    torch.manual_seed(0)
    model = build_bicor("tiny", num_classes=6, image_size=64, class_names=list("abcdef"))
    model.save_pretrained(folder / "ckpt")
    write_synthetic_seg(folder / "data", train=1, val=2, size=64)
    return folder


def test_benchmark_script_scores_a_seg_checkpoint(checkpoint):
    out = checkpoint / "report"
    argv = [
        *_seg_args(checkpoint),
        "--window=48",
        "--stride=16",
        "--num-workers=0",
        f"--json={out / 'r.json'}",
        f"--markdown={out / 'r.md'}",
    ]
    assert _script("benchmark").main(argv) == 0
    results = json.loads((out / "r.json").read_text())
    assert results["images"] == 2 and results["pixels"] > 0
    assert results["protocol"] == "geoseg" and results["window"] == 48
    names = ["background", "building", "road", "water", "forest", "agriculture"]
    assert list(results["per_class"]) == names
    # the same sliding windows, scored without btdnet.metrics (the report rounds to 0.01)
    model = load_bicor(checkpoint / "ckpt")
    val = SyntheticSegDataset(checkpoint / "data", "val", image_size=64)
    expected = reference_scores(model, val, range(6), window=48, stride=16)
    assert results["pixels"] == expected["pixels"] == 2 * 64 * 64
    assert results["mIoU"] == pytest.approx(expected["mIoU"], abs=0.0051)
    assert results["OA"] == pytest.approx(expected["OA"], abs=0.0051)
    for name, iou in zip(names, expected["IoU"]):
        assert results["per_class"][name]["IoU"] == pytest.approx(iou, abs=0.0051)
    assert "| synthetic_seg | val | geoseg | 2 |" in (out / "r.md").read_text()


def test_benchmark_rejects_referring_protocol_for_seg(checkpoint, capsys):
    argv = [
        *_seg_args(checkpoint),
        "--protocol=lavt",
    ]
    assert _script("benchmark").main(argv) == 1
    assert "--protocol in" in capsys.readouterr().err


def test_format_seg_markdown_hand_values():
    results = {
        "dataset": "vaihingen",
        "split": "test",
        "protocol": "geoseg",
        "images": 3,
        "mIoU": 81.234,
        "mF1": 89.5,
        "OA": 90.0,
        "eval_classes": ["a"],
        "per_class": {
            "a": {"IoU": 81.234, "F1": 89.5, "precision": None, "recall": 70.0},
            "b": {"IoU": 0.0, "F1": None, "precision": 0.0, "recall": 0.0},
        },
    }
    text = format_seg_markdown(results)
    assert "| vaihingen | test | geoseg | 3 | 81.23 | 89.50 | 90.00 |" in text
    assert "| a | 81.23 | 89.50 | – | 70.00 |" in text
    assert "| b | 0.00 | – | 0.00 | 0.00 |" in text


def test_colorize_ramp_ends():
    values = colorize(np.array([[0.0, 1.0, 0.5]]))
    assert values[0, 0].tolist() == [0, 0, 128]
    assert values[0, 1].tolist() == [220, 20, 20]
    assert values[0, 2].tolist() == [0, 200, 80]


def test_save_heatmaps_one_picture_per_class_per_layer(tmp_path):
    heatmaps = [torch.zeros(1, 3, 4, 5), torch.zeros(1, 3, 4, 5)]
    heatmaps[1][0, 2] = 10.0
    image = np.zeros((16, 20, 3), dtype=np.uint8)
    paths = save_heatmaps(heatmaps, tmp_path, class_names=["x", "y z", "w"], image=image)
    assert [p.name for p in paths] == [
        "layer1_00_x.png",
        "layer1_01_y_z.png",
        "layer1_02_w.png",
        "layer2_00_x.png",
        "layer2_01_y_z.png",
        "layer2_02_w.png",
    ]
    hot = np.asarray(Image.open(tmp_path / "layer2_02_w.png"))
    assert hot.shape == (16, 20, 3)
    # sigmoid(10) ~ 1 -> red end of the ramp, blended 0.6 over a black image
    assert hot[0, 0].tolist() == [132, 12, 12]
    with pytest.raises(ValueError, match="use_hbis=False"):
        save_heatmaps([], tmp_path, class_names=["x"])


def test_show_heatmaps_command(checkpoint, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "show_heatmaps", REPO / "scripts/show_heatmaps.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    image = checkpoint / "data" / "val" / "images" / "val_00000.png"
    module.main(
        ["--checkpoint", str(checkpoint / "ckpt"), "--image", str(image), "--out", str(tmp_path)]
    )
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(written) == 2 * 6  # tiny: 2 HBIS layers x 6 classes
    assert written[0] == "layer1_00_a.png"
    assert Image.open(tmp_path / written[0]).size == (64, 64)


def _hand_tta_prediction(model, image: torch.Tensor) -> np.ndarray:
    """Class ids of (1, 3, 64, 64) under hflip x scales {0.5, 1}, written out view by view."""
    views = []
    for flip in (False, True):
        x = image.flip(-1) if flip else image
        small = F.interpolate(x, size=(32, 32), mode="bicubic", align_corners=False)
        back = F.interpolate(model(small).logits, size=(64, 64), mode="bicubic")
        for logits in (back, model(x).logits):
            views.append(logits.flip(-1) if flip else logits)
    return (sum(views) / 4)[0].argmax(0).numpy()


def test_benchmark_tta_flip_and_scales_match_the_views_written_by_hand(checkpoint, tmp_path):
    common = [
        *_seg_args(checkpoint),
        "--window=64",  # one window per 64 x 64 image: the TTA alone decides
        "--num-workers=0",
    ]
    tta = [*common, "--border=pad", "--tta", "hflip", "--tta-scales", "0.5", "1"]
    argv = [*tta, f"--save-predictions={tmp_path / 'tta'}", f"--json={tmp_path / 'r.json'}"]
    assert _script("benchmark").main(argv) == 0
    plain = [*common, f"--save-predictions={tmp_path / 'plain'}"]
    assert _script("benchmark").main(plain) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["border"] == "pad"  # 64 x 64 images in 64 windows: nothing to pad
    record = results["tta"]
    assert record == {"hflip": True, "vflip": False, "rot90": False, "scales": [0.5, 1.0]} | {
        "views": 4
    }
    model = load_bicor(checkpoint / "ckpt").eval()
    val = SyntheticSegDataset(checkpoint / "data", "val", image_size=64)
    changed = 0
    with torch.no_grad():
        for index, name in enumerate(["val_00000", "val_00001"]):
            saved = np.asarray(Image.open(tmp_path / "tta" / f"{name}.png"))
            expected = _hand_tta_prediction(model, val[index]["pixel_values"][None])
            np.testing.assert_array_equal(saved, expected)
            changed += int(
                (saved != np.asarray(Image.open(tmp_path / "plain" / f"{name}.png"))).sum()
            )
    assert changed > 0  # the views changed some pixels: the option is not a no-op


def test_benchmark_tta_authors_needs_an_authors_dataset(checkpoint, capsys):
    argv = [
        *_seg_args(checkpoint),
        "--tta=authors",
    ]
    assert _script("benchmark").main(argv) == 1
    assert "the authors tested only vaihingen, loveda, potsdam" in capsys.readouterr().err
