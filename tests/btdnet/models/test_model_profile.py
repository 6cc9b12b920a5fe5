"""scripts/profile_model.py runs end to end on the tiny variant and reports every number."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

from btdnet.profiling import model_flops_utilization, peak_bf16_tflops, step_breakdown

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "profile_model.py"


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
    # the parameter counts, by an independent count of the same tiny model (random weights)
    from btdnet.models import build_model

    def count(module: torch.nn.Module) -> float:
        return sum(p.numel() for p in module.parameters()) / 1e6

    full = build_model("tiny", pretrained=False)
    assert ours["params_m"] == pytest.approx(count(full), abs=1e-9)
    assert ours["inference_params_m"] == pytest.approx(count(full) - count(full.dmols), abs=1e-9)
    encoders = count(full.image_encoder) + count(full.text_encoder)
    assert bare["params_m"] == pytest.approx(encoders, abs=1e-9)
    assert ours["gflops_per_sample"] > bare["gflops_per_sample"]
    assert report["ratio"]["gflops"] == ours["gflops_per_sample"] / bare["gflops_per_sample"]
    step = report["train_step"]
    for key in ("forward_s", "backward_s", "optimizer_s"):
        assert 0 < step[key] <= step["step_s"], key
    assert step["samples_per_s"] == 1 / step["step_s"]
    assert "mfu_percent" not in step  # a CPU has no bf16 peak in the table
    assert "train_step_compiled" not in report  # only with --compile


def test_mfu_is_three_forwards_over_the_peak() -> None:
    # 100 GFLOPs forward per sample at 50 samples/s: 3 * 100e9 * 50 = 15 TFLOP/s of 989.4.
    assert model_flops_utilization(100.0, 50.0, 989.4) == pytest.approx(100 * 15 / 989.4)


def test_peak_table_matches_device_names(monkeypatch) -> None:
    cuda = torch.device("cuda", 0)
    for name, peak in (
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H100 80GB HBM3", 989.4),
        ("NVIDIA H200", 989.4),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("Tesla T4", None),
    ):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device, n=name: n)
        assert peak_bf16_tflops(cuda) == peak, name
    assert peak_bf16_tflops(torch.device("cpu")) is None


def test_step_breakdown_times_each_phase_separately() -> None:
    calls: list[str] = []
    weight = torch.nn.Parameter(torch.ones(3))

    class Recorder(torch.optim.SGD):
        def step(self, closure=None):
            calls.append("optimizer")
            return super().step(closure)

    def loss_fn() -> torch.Tensor:
        calls.append("forward")
        return (weight * 2).sum()

    phases = step_breakdown(
        loss_fn, Recorder([weight], lr=0.5), steps=3, warmup=1, device=torch.device("cpu")
    )
    assert calls == ["forward", "optimizer"] * 4
    assert set(phases) == {"forward_s", "backward_s", "optimizer_s", "step_s"}
    torch.testing.assert_close(weight.detach(), torch.full((3,), 1.0 - 4 * 0.5 * 2))
