"""PhaseTimer and the trainer's per-phase timing (scripts/profile_training.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from btdnet.engine import Trainer, apply_overrides
from btdnet.engine.phase_timer import PhaseTimer
from tests.launch import run_python
from tests.toy_task import ToyData, ToyTask

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "profile_training.py"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_marks_charge_the_time_since_the_last_mark() -> None:
    clock = FakeClock()
    timer = PhaseTimer(torch.device("cpu"), clock=clock)
    for forward in (1.0, 3.0, 2.0):
        clock.now += 0.5
        timer.mark("data")
        clock.now += forward
        timer.mark("forward")
        clock.now += 0.25  # two marks of one phase in a step add up
        timer.mark("backward")
        clock.now += 0.25
        timer.mark("backward")
        timer.end_step()
    assert [row["forward"] for row in timer.steps] == [1.0, 3.0, 2.0]
    assert timer.medians() == {"data": 0.5, "forward": 2.0, "backward": 0.5, "step": 3.0}
    assert timer.medians(skip=1)["forward"] == 2.5
    assert timer.medians(skip=3) == {}
    clock.now += 100.0  # between epochs: restart drops it
    timer.restart()
    clock.now += 1.0
    timer.mark("data")
    timer.end_step()
    assert timer.steps[-1] == {"data": 1.0}


class SlowData(ToyData):
    """Each item costs 1 s of the fake clock."""

    def __init__(self, n: int, seed: int, clock: FakeClock) -> None:
        super().__init__(n, seed)
        self.clock = clock

    def __getitem__(self, i: int) -> dict:
        self.clock.now += 1.0
        return super().__getitem__(i)


class SlowTask(ToyTask):
    """The forward costs 5 s of the fake clock, the backward 2 s."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(n=32)
        self.clock = clock

    def build_datasets(self, model):
        _, evals = super().build_datasets(model)
        return SlowData(self.n, 0, self.clock), evals

    def compute_loss(self, model, batch):
        self.clock.now += 5.0
        loss, terms = super().compute_loss(model, batch)
        clock = self.clock

        def on_backward(grad: torch.Tensor) -> torch.Tensor:
            clock.now += 2.0
            return grad

        loss.register_hook(on_backward)
        return loss, terms


class ClockedTrainer(Trainer):
    def __init__(self, *args, clock: FakeClock, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def _setup(self) -> None:
        super()._setup()
        assert self.phase_timer is not None
        self.phase_timer.clock = self.clock


@pytest.mark.parametrize("accumulate", [1, 2])
def test_trainer_charges_each_phase_of_an_update(tmp_path: Path, accumulate: int) -> None:
    clock = FakeClock()
    config = apply_overrides(
        {"seed": 0, "data": {"n": 32}, "train": {"epochs": 1, "trackers": "none"}},
        ["train.batch_size=4", f"train.grad_accum={accumulate}", "train.stop_after_steps=3"],
    )
    trainer = ClockedTrainer(
        SlowTask(clock), config, tmp_path, show_progress=False, time_phases=True, clock=clock
    )
    trainer.fit()
    timer = trainer.phase_timer
    assert timer is not None and len(timer.steps) == 3  # one row per update
    # Row 0 also holds the loader's first look-ahead batch; later rows are steady.
    expected = {
        "data": 4.0 * accumulate,
        "forward": 5.0 * accumulate,
        "backward": 2.0 * accumulate,
        "optimizer": 0.0,
        "bookkeeping": 0.0,
    }
    assert timer.medians(skip=1) == {**expected, "step": sum(expected.values())}


def test_trainer_without_time_phases_keeps_no_timer(tmp_path: Path) -> None:
    config = {"seed": 0, "data": {"n": 8}, "train": {"epochs": 1, "trackers": "none"}}
    trainer = Trainer(ToyTask(n=8), config, tmp_path, show_progress=False)
    trainer.fit()
    assert trainer.phase_timer is None


def _tiny_referring_config(tmp_path: Path, data: Path) -> Path:
    config = {
        "seed": 0,
        "output_dir": str(tmp_path / "must_not_be_written"),
        "model": {"variant": "tiny", "pretrained": False, "overrides": {"use_dmols": False}},
        "data": {"dataset": "rrsisd", "root": str(data), "eval_splits": ["val"]},
        "train": {"epochs": 1, "batch_size": 2, "lr": 1e-3},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture()
def tiny_data(tmp_path: Path) -> Path:
    from btdnet.data.synthetic import generate_synthetic_rrsisd

    root = tmp_path / "data"
    generate_synthetic_rrsisd(root, train=3, val=1, test=1, size=64, seed=1, show_progress=False)
    return root


def test_profile_training_reports_every_phase_and_writes_nothing_else(
    tmp_path: Path, tiny_data: Path
) -> None:
    config = _tiny_referring_config(tmp_path, tiny_data)
    out = tmp_path / "report.json"
    args = ["--steps", "3", "--warmup", "1", "--threads", "1", "--json", str(out)]
    completed = run_python([str(SCRIPT), "--config", str(config), *args], timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(out.read_text())
    assert list(report["phases_ms"]) == ["data", "forward", "backward", "optimizer", "bookkeeping"]
    assert all(ms >= 0 for ms in report["phases_ms"].values())
    assert report["phases_ms"]["forward"] > 0 and report["phases_ms"]["backward"] > 0
    assert (report["timed_steps"], report["batch_size"], report["processes"]) == (3, 2, 1)
    assert report["samples_per_s"] == pytest.approx(2 / (report["step_ms"] / 1e3))
    for name in ["data", "forward", "backward", "optimizer", "step"]:
        assert name in completed.stdout
    assert not (tmp_path / "must_not_be_written").exists()


def test_profile_training_runs_past_the_configs_epochs(tmp_path: Path, tiny_data: Path) -> None:
    config = _tiny_referring_config(tmp_path, tiny_data)  # 1 epoch of 2-sample batches
    out = tmp_path / "report.json"
    args = ["--steps", "12", "--warmup", "0", "--threads", "1", "--json", str(out)]
    completed = run_python([str(SCRIPT), "--config", str(config), *args], timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(out.read_text())["timed_steps"] == 12


def test_profile_training_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("model: {variant: tiny}\ndata: {root: x}\ntrain: {no_such_key: 3}\n")
    completed = run_python([str(SCRIPT), "--config", str(config)], timeout=300)
    assert completed.returncode == 1
    assert completed.stderr.strip().count("\n") == 0, completed.stderr
    assert "bad.yaml" in completed.stderr and "no_such_key" in completed.stderr


def test_profile_training_refuses_a_folder_as_json_before_running(
    tmp_path: Path, tiny_data: Path
) -> None:
    config = _tiny_referring_config(tmp_path, tiny_data)
    (tmp_path / "taken").mkdir()
    args = ["--json", str(tmp_path / "taken"), "--threads", "1"]
    completed = run_python([str(SCRIPT), "--config", str(config), *args], timeout=300)
    assert completed.returncode == 1
    assert completed.stderr.strip().count("\n") == 0, completed.stderr
    assert "taken" in completed.stderr and "not a regular file" in completed.stderr
    assert "step" not in completed.stdout  # refused before any training
    assert (tmp_path / "taken").is_dir()


def test_profile_training_refuses_zero_threads(tmp_path: Path, tiny_data: Path) -> None:
    config = _tiny_referring_config(tmp_path, tiny_data)
    completed = run_python([str(SCRIPT), "--config", str(config), "--threads", "0"], timeout=300)
    assert completed.returncode == 2
    assert "argument --threads: must be >= 1, got 0" in completed.stderr
