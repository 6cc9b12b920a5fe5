"""scripts/profile_model.py runs end to end on the tiny variant and reports every number."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "profile_model.py"


def test_profile_script_reports_model_and_bare_encoders(monkeypatch, capsys) -> None:
    argv = [
        str(SCRIPT),
        "--variant",
        "tiny",
        "--batch-size",
        "1",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]
    monkeypatch.setattr(sys, "argv", [*argv, "--json"])
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
    report = json.loads(capsys.readouterr().out)
    assert report["variant"] == "tiny" and report["tokens"] == 12
    ours, bare = report["btdnet"], report["bare_encoders"]
    for entry in (ours, bare):
        for key in ("params_m", "gflops_per_sample", "forward_s", "train_step_s", "train_peak_mb"):
            assert entry[key] > 0, key
    assert ours["params_m"] > ours["inference_params_m"] > bare["params_m"]
    assert ours["gflops_per_sample"] > bare["gflops_per_sample"]
    assert report["ratio"]["gflops"] == ours["gflops_per_sample"] / bare["gflops_per_sample"]
