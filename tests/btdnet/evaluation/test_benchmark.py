"""Evaluation runner, prediction files, reports, swapped expressions and the benchmark CLI."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from btdnet.evaluation import (
    SwappedExpressionDataset,
    evaluate_referring,
    format_markdown,
    prediction_filename,
    read_prediction,
    score_prediction_files,
    write_json,
    write_prediction,
)
from btdnet.evaluation.referring_eval import find_referring_dataset
from btdnet.evaluation.report import round_floats
from tests.launch import run_python

REPO = Path(__file__).resolve().parents[3]
EVAL_SIZE = 4  # input resolution of the fake dataset


@dataclass(frozen=True)
class FakeRecord:
    sample_id: str
    category: str
    category_id: int
    image_id: str
    split: str


def _block(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((EVAL_SIZE, EVAL_SIZE), dtype=bool)
    mask[rows, cols] = True
    return mask


# (image_id, original side, category, gt at 4x4, prediction at 4x4); blocks scale exactly.
FAKE_SAMPLES = [
    ("a", 8, "ship", _block(slice(0, 2), slice(0, 2)), _block(slice(0, 2), slice(0, 4))),
    ("a", 8, "car", _block(slice(2, 4), slice(2, 4)), _block(slice(2, 4), slice(2, 4))),
    ("b", 40, "ship", _block(slice(0, 4), slice(0, 3)), _block(slice(0, 4), slice(0, 2))),
    ("c", 4, "", _block(slice(0, 0), slice(0, 0)), _block(slice(0, 0), slice(0, 0))),
    ("c", 4, "car", _block(slice(0, 1), slice(0, 4)), _block(slice(0, 2), slice(0, 4))),
]
# Per sample at 4x4: I = 4, 4, 8, 0, 4; U = 8, 4, 12, 0, 8; IoU = .5, 1, 2/3, 0, .5.
# At original size the counts scale by side**2 / 16: I = 16, 16, 800, 0, 4; U = 32, 16, 1200, 0, 8.
LAVT_EXPECTED = {
    "samples": 5,
    "oIoU": 100 * 20 / 32,
    "mIoU": 100 * (0.5 + 1 + 2 / 3 + 0 + 0.5) / 5,
    "Pr@0.5": 80.0,
    "Pr@0.6": 40.0,
    "Pr@0.7": 20.0,
    "Pr@0.8": 20.0,
    "Pr@0.9": 20.0,
}
ORIGINAL_OIOU = 100 * 836 / 1256


def _upscale(mask: np.ndarray, side: int) -> np.ndarray:
    factor = side // EVAL_SIZE
    return np.kron(mask, np.ones((factor, factor), dtype=bool)).astype(bool)


class FakeReferringDataset(Dataset):
    """Follows the referring item contract; channel 0 of the image encodes the prediction."""

    split = "val"

    def __init__(self, samples: list[tuple] | None = None) -> None:
        self.samples = FAKE_SAMPLES if samples is None else samples
        self.records = [
            FakeRecord(f"{i + 1}-{10 + i}", cat, i if cat else -1, image_id, "val")
            for i, (image_id, _, cat, _, _) in enumerate(self.samples)
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def original_mask(self, index: int) -> np.ndarray:
        _, side, _, gt, _ = self.samples[index]
        return _upscale(gt, side)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id, side, category, gt, pred = self.samples[index]
        pixels = torch.zeros(3, EVAL_SIZE, EVAL_SIZE)
        pixels[0] = torch.from_numpy(np.where(pred, 1.0, -1.0))
        ids = torch.zeros(5, dtype=torch.int64)
        ids[0] = index
        record = self.records[index]
        return {
            "pixel_values": pixels,
            "mask": torch.from_numpy(gt.astype(np.int64)),
            "input_ids": ids,
            "attention_mask": torch.ones(5, dtype=torch.int64),
            "text": f"expression {index}",
            "category": category,
            "category_id": record.category_id,
            "sample_id": record.sample_id,
            "image_id": image_id,
            "orig_size": torch.tensor([side, side]),
            "index": index,
        }


class PatternModel(nn.Module):
    """Predicts where channel 0 of the image is positive (ignores the text)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        return SimpleNamespace(target_logits=self.scale * pixel_values[:, :1])  # (B, 1, H, W)


class TextOracleModel(nn.Module):
    """Predicts the ground truth of the sample whose index is the first token (reads text)."""

    def __init__(self, dataset: FakeReferringDataset) -> None:
        super().__init__()
        masks = torch.stack([torch.from_numpy(s[3]) for s in dataset.samples])  # (N, S, S)
        self.register_buffer("templates", torch.where(masks, 1.0, -1.0)[:, None])

    def forward(self, pixel_values, input_ids, attention_mask) -> SimpleNamespace:
        return SimpleNamespace(target_logits=self.templates[input_ids[:, 0]])  # (B, 1, S, S)


def _accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def _evaluate(dataset, model=None, protocol="lavt", batch_size=2, **kwargs) -> dict:
    accelerator = _accelerator()
    loader = accelerator.prepare(DataLoader(dataset, batch_size=batch_size))
    return evaluate_referring(
        model or PatternModel(),
        loader,
        accelerator,
        protocol=protocol,
        show_progress=False,
        **kwargs,
    )


def _assert_expected(result: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key


# --- evaluate_referring -----------------------------------------------------------------


def test_evaluate_referring_reports_the_boundary_f_score() -> None:
    # At 4x4 the matching radius is 1 pixel (ceil(0.008 * 5.66)); the image's edge is no
    # boundary. Sample 1: truth's boundary (0,1) (1,0) (1,1), the prediction's row 1: its
    # (1,3) is 2 pixels from the truth's boundary, so P = 3/4, R = 1, F = 6/7. Samples 2, 3
    # and 5 match every boundary pixel within a pixel (F = 1); sample 4 is empty on both
    # sides (F = 1).
    result = _evaluate(FakeReferringDataset())
    assert result["BF"] == pytest.approx(100 * (6 / 7 + 4) / 5)
    # the per-category tables carry it too: ship = samples 1 and 3
    assert result["per_category"]["ship"]["BF"] == pytest.approx(100 * (6 / 7 + 1) / 2)


def test_evaluate_referring_lavt_hand_computed(tmp_path: Path) -> None:
    model = PatternModel()
    model.train()
    result = _evaluate(FakeReferringDataset(), model, save_dir=tmp_path / "pred")
    assert model.training  # mode restored
    _assert_expected(result, LAVT_EXPECTED)
    assert result["protocol"] == "lavt"
    assert result["split"] == "val"
    ship = result["per_category"]["ship"]
    assert ship["oIoU"] == pytest.approx(60.0)
    assert ship["mIoU"] == pytest.approx(100 * (0.5 + 2 / 3) / 2)
    assert result["per_category"]["car"]["oIoU"] == pytest.approx(100 * 8 / 12)
    assert set(result["per_category"]) == {"ship", "car"}
    # Original areas: 16, 16, 1200, 0, 4 -> small, small, medium, small, small.
    assert result["per_size"]["small"]["samples"] == 4
    assert result["per_size"]["small"]["oIoU"] == pytest.approx(60.0)
    assert result["per_size"]["medium"]["mIoU"] == pytest.approx(100 * 2 / 3)
    # Predictions at original size, 0/255, named by sample id.
    files = sorted(p.name for p in (tmp_path / "pred").iterdir())
    assert files == sorted(prediction_filename(r.sample_id) for r in FakeReferringDataset().records)
    saved = np.asarray(Image.open(tmp_path / "pred" / "3-12.png"))
    assert saved.shape == (40, 40)
    assert set(np.unique(saved)) == {0, 255}
    assert np.array_equal(saved == 255, _upscale(FAKE_SAMPLES[2][4], 40))


def test_evaluate_referring_original_protocol() -> None:
    result = _evaluate(FakeReferringDataset(), protocol="original", batch_size=3)
    assert result["oIoU"] == pytest.approx(ORIGINAL_OIOU)
    assert result["mIoU"] == pytest.approx(LAVT_EXPECTED["mIoU"])
    assert result["Pr@0.6"] == pytest.approx(40.0)
    assert result["protocol"] == "original"


def test_evaluate_referring_without_dataset_estimates_area() -> None:
    accelerator = _accelerator()
    items = [FakeReferringDataset()[i] for i in range(5)]
    loader = DataLoader(items, batch_size=5)  # a plain list: no records, no original_mask
    result = evaluate_referring(PatternModel(), loader, accelerator, show_progress=False)
    _assert_expected(result, LAVT_EXPECTED)
    assert result["per_category"] == {}
    assert result["per_size"]["medium"]["samples"] == 1
    with pytest.raises(ValueError, match="original"):
        evaluate_referring(PatternModel(), loader, accelerator, protocol="original")
    with pytest.raises(ValueError, match="protocol"):
        evaluate_referring(PatternModel(), loader, accelerator, protocol="strict")


# --- prediction files and scoring -------------------------------------------------------


def _write_fake_predictions(folder: Path, dataset: FakeReferringDataset) -> None:
    for record, (_, side, _, _, pred) in zip(dataset.records, dataset.samples):
        write_prediction(_upscale(pred, side), folder / prediction_filename(record.sample_id))


def test_prediction_round_trip_and_scoring(tmp_path: Path) -> None:
    dataset = FakeReferringDataset()
    _write_fake_predictions(tmp_path, dataset)
    mask = read_prediction(tmp_path / "1-10.png")
    assert mask.dtype == bool and mask.shape == (8, 8)
    assert np.array_equal(mask, _upscale(FAKE_SAMPLES[0][4], 8))
    _assert_expected(score_prediction_files(dataset, tmp_path, "lavt"), LAVT_EXPECTED)
    original = score_prediction_files(dataset, tmp_path, "original")
    assert original["oIoU"] == pytest.approx(ORIGINAL_OIOU)
    # the protocol as the command line reads it: a string built at run time, not the literal
    from_argv = "".join(["orig", "inal"])  # equal to "original", not the same object
    assert score_prediction_files(dataset, tmp_path, from_argv)["oIoU"] == original["oIoU"]
    assert original["split"] == "val" and original["protocol"] == "original"
    assert original["per_size"]["medium"]["samples"] == 1


def test_prediction_rgb_and_missized_files(tmp_path: Path) -> None:
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[:4, :, 1] = 200  # foreground in the green channel only
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "rgb.png")
    assert read_prediction(tmp_path / "rgb.png").sum() == 32
    # A 3x3 file resized with nearest to 6x6: each pixel becomes a 2x2 block.
    small = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.uint8) * 255
    Image.fromarray(small, mode="L").save(tmp_path / "small.png")
    resized = read_prediction(tmp_path / "small.png", size=(6, 6))
    assert np.array_equal(resized, np.kron(small > 0, np.ones((2, 2), dtype=bool)))
    # Scoring accepts mis-sized predictions: lavt-sized files scored at original size.
    dataset = FakeReferringDataset()
    for record, (_, _, _, _, pred) in zip(dataset.records, dataset.samples):
        write_prediction(pred, tmp_path / "lavt" / prediction_filename(record.sample_id))
    result = score_prediction_files(dataset, tmp_path / "lavt", "original")
    assert result["oIoU"] == pytest.approx(ORIGINAL_OIOU)


def test_missing_prediction_names_file(tmp_path: Path) -> None:
    dataset = FakeReferringDataset()
    _write_fake_predictions(tmp_path, dataset)
    (tmp_path / "2-11.png").unlink()
    (tmp_path / "4-13.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"2-11\.png.*2 of 5"):
        score_prediction_files(dataset, tmp_path, "lavt")
    with pytest.raises(ValueError, match="file name"):
        prediction_filename("../x")


# --- reports ----------------------------------------------------------------------------


def test_markdown_and_json_reports(tmp_path: Path) -> None:
    result = _evaluate(FakeReferringDataset())
    text = format_markdown(result)
    assert "| split | protocol | samples | oIoU | mIoU | Pr@0.5 |" in text
    assert "| val | lavt | 5 | 62.50 | 53.33 | 80.00 | 40.00 | 20.00 | 20.00 | 20.00 |" in text
    assert "| ship | 2 | 60.00 | 58.33 |" in text
    assert "| medium | 1 | 66.67 | 66.67 |" in text
    path = write_json(result, tmp_path / "out" / "r.json")
    data = json.loads(path.read_text())
    for key in ["samples", "oIoU", "mIoU", "Pr@0.5", "Pr@0.6", "Pr@0.7", "Pr@0.8", "Pr@0.9"]:
        assert key in data
    assert data["mIoU"] == 53.33
    assert data["per_category"]["car"]["oIoU"] == 66.67
    assert {"protocol", "split", "per_category", "per_size"} <= set(data)


# --- swapped expressions ----------------------------------------------------------------


def test_swapped_expressions_pairing_and_language_check() -> None:
    dataset = FakeReferringDataset()
    swapped = SwappedExpressionDataset(dataset, seed=3)
    # Image b has one object only -> dropped; a: 0<->1; c: 3 (empty) <-> 4 (different mask).
    assert len(swapped) == 4 and swapped.dropped == 1
    assert swapped.indices == [0, 1, 3, 4] and swapped.partners == [1, 0, 4, 3]
    item = swapped[0]
    assert item["index"] == 0 and item["text"] == "expression 1"
    assert int(item["input_ids"][0]) == 1 and item["partner_sample_id"] == "2-11"
    assert torch.equal(item["mask"], dataset[0]["mask"])
    again = SwappedExpressionDataset(dataset, seed=3)
    assert again.partners == swapped.partners
    model = TextOracleModel(dataset)
    plain = _evaluate(dataset, model)
    language = _evaluate(swapped, model)
    assert plain["oIoU"] == pytest.approx(100.0)
    assert language["samples"] == 4
    assert language["oIoU"] < plain["oIoU"] - 50
    # The same samples with their own expressions, through a Subset (records found beneath it).
    same = _evaluate(Subset(dataset, swapped.indices), model)
    assert (same["samples"], same["oIoU"]) == (4, pytest.approx(100.0))
    assert set(same["per_category"]) == {"ship", "car"}


def test_evaluate_referring_finds_the_dataset_under_any_depth_of_wrappers() -> None:
    dataset = FakeReferringDataset()
    wrapped: Dataset = dataset
    for _ in range(12):  # Subset of Subset ...: records and original sizes still found
        wrapped = Subset(wrapped, list(range(len(FAKE_SAMPLES))))
    assert find_referring_dataset(DataLoader(wrapped)) is dataset
    deep = _evaluate(wrapped, protocol="original")
    assert deep["oIoU"] == pytest.approx(_evaluate(dataset, protocol="original")["oIoU"])
    assert set(deep["per_category"]) == {"ship", "car"}

    class Loop(Dataset):  # a wrapper whose .dataset leads back to itself: no hang, no dataset
        def __init__(self) -> None:
            self.dataset = self

    assert find_referring_dataset(DataLoader(Loop())) is None
    assert find_referring_dataset(DataLoader([1, 2])) is None


def test_swap_prefers_ann_id_and_random_choice_is_seeded() -> None:
    @dataclass(frozen=True)
    class AnnRecord(FakeRecord):
        ann_id: int = 0

    samples = [("a", 4, "ship", _block(slice(0, 1), slice(0, 1)), _block(slice(0, 1), slice(0, 1)))]
    dataset = FakeReferringDataset(samples * 6)
    # Same mask everywhere, but ann ids 0,0,1,1,2,2: partners must have another ann id.
    dataset.records = [
        AnnRecord(r.sample_id, r.category, r.category_id, r.image_id, r.split, ann_id=i // 2)
        for i, r in enumerate(dataset.records)
    ]
    swapped = SwappedExpressionDataset(dataset, seed=0)
    assert swapped.dropped == 0
    for index, partner in zip(swapped.indices, swapped.partners):
        assert index // 2 != partner // 2
    choices = {tuple(SwappedExpressionDataset(dataset, seed=s).partners) for s in range(8)}
    assert len(choices) > 1
    # Without ann ids the identical masks make every sample partnerless.
    assert len(SwappedExpressionDataset(FakeReferringDataset(samples * 3))) == 0


# --- several processes ------------------------------------------------------------------

_MULTI_PROCESS_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from accelerate import Accelerator
from torch.utils.data import DataLoader
from test_benchmark import FakeReferringDataset, PatternModel
from btdnet.evaluation import evaluate_referring

accelerator = Accelerator(cpu=True)
assert accelerator.num_processes == 2, accelerator.num_processes
loader = accelerator.prepare(DataLoader(FakeReferringDataset(), batch_size=2))
result = evaluate_referring(
    PatternModel(), loader, accelerator, save_dir={pred!r}, show_progress=False
)
with open({out!r} + f"/rank{{accelerator.process_index}}.json", "w") as handle:
    json.dump(result, handle)
"""


@pytest.mark.slow
def test_two_processes_count_every_sample_once(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        _MULTI_PROCESS_SCRIPT.format(
            tests=str(Path(__file__).resolve().parent),
            pred=str(tmp_path / "pred"),
            out=str(tmp_path),
        )
    )
    completed = run_python([str(script)], processes=2, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    single = _evaluate(FakeReferringDataset())
    assert ranks[0]["samples"] == 5
    for key in ["oIoU", "mIoU", "Pr@0.5", "Pr@0.6", "Pr@0.9"]:
        assert ranks[0][key] == pytest.approx(single[key]), key
    for key in ["per_category", "per_size"]:
        assert round_floats(ranks[0][key], 6) == round_floats(single[key], 6), key
    assert len(list((tmp_path / "pred").glob("*.png"))) == 5


# --- the real data layer and the benchmark CLI ------------------------------------------


def _run_benchmark(*args: str) -> subprocess.CompletedProcess:
    return run_python([str(REPO / "scripts" / "benchmark.py"), *args], timeout=240)


@pytest.fixture()
def rrsisd_root(tmp_path: Path) -> Path:
    from referring_fixtures import write_rrsisd_fixture

    write_rrsisd_fixture(tmp_path / "data")
    return tmp_path / "data"


def test_swap_on_rrsisd_fixture_drops_same_object_sentences(rrsisd_root: Path) -> None:
    from btdnet.data import build_referring_dataset

    train = build_referring_dataset("rrsisd", rrsisd_root, "train", None, image_size=32)
    # Image 1 holds two sentences of one object, image 2 one object: nobody has a partner.
    swapped = SwappedExpressionDataset(train)
    assert (len(swapped), swapped.dropped) == (0, 3)


def test_benchmark_help_explains_protocols_and_names() -> None:
    completed = _run_benchmark("--help")
    assert completed.returncode == 0
    for word in ["lavt", "original", "<ref_id>-<sent_id>.png", "<line>-<image_id>.png", "--task"]:
        assert word in completed.stdout


def test_benchmark_cli_scores_prediction_files(rrsisd_root: Path, tmp_path: Path) -> None:
    # The test split holds sample 4-14: GT rows 20-32, cols 25-32 of a 33x33 image (104 px).
    pred = np.zeros((33, 33), dtype=bool)
    pred[20:33, 25:29] = True  # 52 px inside the GT: IoU 0.5 at any integer scale
    write_prediction(pred, tmp_path / "pred" / "4-14.png")
    completed = _run_benchmark(
        *("--predictions", str(tmp_path / "pred"), "--dataset", "rrsisd"),
        *("--root", str(rrsisd_root), "--split", "test", "--image-size", "66"),
        *("--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    data = json.loads((tmp_path / "r.json").read_text())
    expected = {"samples": 1, "oIoU": 50.0, "mIoU": 50.0, "Pr@0.5": 100.0, "Pr@0.6": 0.0}
    assert {key: data[key] for key in expected} == expected
    assert data["Pr@0.7"] == data["Pr@0.8"] == data["Pr@0.9"] == 0.0
    assert (data["protocol"], data["split"], data["dataset"]) == ("lavt", "test", "rrsisd")
    assert list(data["per_category"]) == ["windmill"]
    assert list(data["per_size"]) == ["small"]
    assert "| test | lavt | 1 | 50.00 | 50.00 | 100.00 |" in completed.stdout
    assert (tmp_path / "r.md").read_text() == completed.stdout


@pytest.mark.slow
def test_benchmark_cli_checkpoint_saves_predictions(rrsisd_root: Path, tmp_path: Path) -> None:
    from btdnet.data import build_referring_dataset
    from btdnet.models import build_model

    build_model("tiny", pretrained=False).save_pretrained(tmp_path / "ckpt")
    completed = _run_benchmark(
        *("--checkpoint", str(tmp_path / "ckpt"), "--dataset", "rrsisd"),
        *("--root", str(rrsisd_root), "--split", "test", "--protocol", "original"),
        *("--num-workers", "0", "--json", str(tmp_path / "r.json")),
        *("--save-predictions", str(tmp_path / "saved")),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    data = json.loads((tmp_path / "r.json").read_text())
    assert (data["samples"], data["protocol"], data["image_size"]) == (1, "original", 96)
    saved = np.asarray(Image.open(tmp_path / "saved" / "4-14.png"))
    assert saved.shape == (33, 33)
    # Scoring the saved files reproduces the model's numbers under the same protocol.
    test = build_referring_dataset("rrsisd", rrsisd_root, "test", None, image_size=96)
    rescored = score_prediction_files(test, tmp_path / "saved", "original")
    for key in ["oIoU", "mIoU", "Pr@0.5", "Pr@0.9"]:
        assert round(rescored[key], 2) == data[key], key


def test_split_loader_reads_at_the_models_sizes_unless_told(rrsisd_root: Path) -> None:
    from btdnet.evaluation.referring_eval import split_loader
    from btdnet.models import build_model

    model = build_model("tiny", pretrained=False)
    own, own_loader = split_loader(model, "rrsisd", rrsisd_root, "train", 2, _accelerator())
    cut, cut_loader = split_loader(
        model, "rrsisd", rrsisd_root, "train", 2, _accelerator(), max_tokens=3, num_workers=0
    )
    batch, short = next(iter(own_loader)), next(iter(cut_loader))
    assert batch["pixel_values"].shape[-2:] == (model.config.image_size,) * 2
    assert batch["input_ids"].shape[1] == model.config.max_tokens
    assert short["input_ids"].shape[1] == 3
    assert len(own) == len(cut) == 3  # in order, nothing dropped
    # Cut at 3 tokens: [CLS], the first word, [SEP] (the tokenizer's truncation).
    assert torch.equal(batch["input_ids"][:, :2], short["input_ids"][:, :2])
    assert (short["input_ids"][:, 2] == model.tokenizer.sep_token_id).all()
