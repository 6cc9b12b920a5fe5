"""End-to-end: train_rrsis.py + benchmark.py on a tiny synthetic set, 1 and 2 processes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from btdnet.data.synthetic import generate_synthetic_rrsisd

ROOT = Path(__file__).resolve().parents[3]
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",
}


def _config(tmp: Path, data: Path) -> Path:
    config = {
        "seed": 0,
        "model": {
            "variant": "tiny",
            "pretrained": False,
            # no dropout and no random D-MOLS masking: 1 and 2 processes see the same maths
            "overrides": {
                "use_dmols": False,
                "text_config": {
                    "model_type": "bert",
                    "vocab_size": 30522,
                    "hidden_size": 32,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 2,
                    "intermediate_size": 64,
                    "max_position_embeddings": 64,
                    "hidden_dropout_prob": 0.0,
                    "attention_probs_dropout_prob": 0.0,
                },
            },
        },
        "data": {"dataset": "rrsisd", "root": str(data), "eval_splits": ["val"], "image_size": 96},
        "train": {
            "epochs": 2,
            "batch_size": 2,
            "eval_batch_size": 3,
            "lr": 1e-3,
            "trackers": "none",
            "warmup_steps": 1,
        },
    }
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _launcher(processes: int) -> list[str]:
    if processes == 1:
        return [sys.executable]
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun not found beside the interpreter"
    return [torchrun, "--standalone", f"--nproc_per_node={processes}"]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic_rrsisd(root, train=4, val=2, test=2, size=64, seed=1, show_progress=False)
    return root


def _train_and_benchmark(tmp: Path, data: Path, processes: int) -> tuple[dict, dict, Path]:
    out = tmp / f"run{processes}"
    cfg = _config(tmp, data)
    launch = _launcher(processes)
    _run([*launch, "scripts/train_rrsis.py", "--config", str(cfg), "--output-dir", str(out)])
    progress = out / "checkpoints" / "last" / "training_state" / "progress.json"
    assert json.loads(progress.read_text())["num_processes"] == processes
    bench = tmp / f"bench{processes}.json"
    _run(
        [
            *launch,
            "scripts/benchmark.py",
            "--checkpoint",
            str(out / "checkpoints" / "best"),
            "--dataset",
            "rrsisd",
            "--root",
            str(data),
            "--split",
            "test",
            "--batch-size",
            "2",
            "--json",
            str(bench),
        ]
    )
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return json.loads(bench.read_text()), records[-1], out


def test_one_and_two_processes_agree(tmp_path, tiny_set):
    one, one_val, one_dir = _train_and_benchmark(tmp_path, tiny_set, 1)
    two, two_val, _ = _train_and_benchmark(tmp_path, tiny_set, 2)
    # every sample counted once, on both sides
    assert one["samples"] == two["samples"] > 0
    assert one_val["samples"] == two_val["samples"] > 0
    # the same training maths (2 x batch 2 == 1 x batch 4 split in two): close metrics
    for key in ("oIoU", "mIoU"):
        assert abs(one[key] - two[key]) <= 2.0, (key, one[key], two[key])
    # the same checkpoint scored by 2 processes gives exactly the 1-process numbers
    again = tmp_path / "again.json"
    _run(
        [
            *_launcher(2),
            "scripts/benchmark.py",
            "--checkpoint",
            str(one_dir / "checkpoints" / "best"),
            "--dataset",
            "rrsisd",
            "--root",
            str(tiny_set),
            "--split",
            "test",
            "--batch-size",
            "3",
            "--json",
            str(again),
        ]
    )
    scored = json.loads(again.read_text())
    for key in ("samples", "oIoU", "mIoU", "Pr@0.5", "Pr@0.9"):
        assert scored[key] == one[key], key
