import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from btdnet.engine import NonFiniteLossError, Trainer, TrainSummary, apply_overrides, load_config
from btdnet.engine import checkpoints as ckpt
from btdnet.engine.config import ConfigError
from btdnet.engine.schedule import warmup_cosine_factor, warmup_poly_factor
from tests.toy_task import ToyData, ToyModel, ToyTask

BASE = {
    "seed": 3,
    "data": {"n": 40},
    "train": {
        "epochs": 3,
        "batch_size": 8,
        "eval_batch_size": 5,
        "lr": 0.05,
        "warmup_steps": 2,
        "trackers": "none",
        "keep_checkpoints": 5,
    },
}


def _run(tmp: Path, overrides=(), resume=None, task=None) -> TrainSummary:
    config = apply_overrides(BASE, overrides)
    task = task or ToyTask.from_config(config)
    return Trainer(task, config, tmp, resume=resume, show_progress=False).fit()


def _weights(run_dir: Path) -> dict:
    return load_file(str(run_dir / "checkpoints" / "last" / "model.safetensors"))


def test_config_overrides_parse_yaml_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 3e-5\n  epochs: 2\ndata:\n  root: x\n")
    cfg = load_config(path, ["train.lr=1e-4", "data.eval_splits=[val,test]", "model.variant=tiny"])
    assert cfg["train"]["lr"] == pytest.approx(1e-4)
    assert cfg["train"]["epochs"] == 2
    assert cfg["data"]["eval_splits"] == ["val", "test"]
    assert cfg["model"]["variant"] == "tiny"
    assert load_config(path)["train"]["lr"] == pytest.approx(3e-5)
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        apply_overrides(cfg, ["novalue"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_schedules_hand_values():
    assert warmup_poly_factor(0, warmup_steps=4, total_steps=14, power=0.9) == pytest.approx(0.25)
    assert warmup_poly_factor(4, warmup_steps=4, total_steps=14, power=0.9) == pytest.approx(1.0)
    assert warmup_poly_factor(9, warmup_steps=4, total_steps=14, power=0.9) == pytest.approx(
        0.5**0.9
    )
    assert warmup_poly_factor(14, warmup_steps=4, total_steps=14, power=0.9) == 0.0
    mid = warmup_cosine_factor(5, warmup_steps=0, total_steps=10, min_factor=0.1)
    assert mid == pytest.approx(0.1 + 0.9 * 0.5)


def test_training_writes_metrics_checkpoints_and_config(tmp_path):
    summary = _run(tmp_path)
    assert summary.epochs_done == 3 and not summary.stopped_early
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert all(r["split"] == "val" and r["samples"] == 13 for r in records)
    scores = [r["score"] for r in records]
    # 15 steps of SGD on a linear target: the validation error must fall, not just be finite
    assert scores[-1] > scores[0]
    last = (tmp_path / "checkpoints" / "last").resolve()
    assert last.name == "epoch-0003"
    best_epoch = max(range(3), key=lambda i: scores[i]) + 1
    assert (tmp_path / "checkpoints" / "best").resolve().name == f"epoch-{best_epoch:04d}"
    # the logged score is the negative MSE of the saved weights on the 13 validation rows,
    # recomputed here without the trainer
    model = ToyModel().eval()
    model.load_state_dict(_weights(tmp_path))
    val = ToyData(13, 1)
    with torch.no_grad():
        mse = ((model(val.x) - val.y) ** 2).mean().item()
    assert scores[-1] == pytest.approx(-mse, rel=1e-5)
    assert (tmp_path / "config.yaml").is_file()
    progress = json.loads((last / "training_state" / "progress.json").read_text())
    assert progress["global_step"] == 15 and progress["epoch"] == 3


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    _run(tmp_path / "full")
    # Interrupted in the middle of epoch 2 (step 7 of 15): epoch-0001 is the last checkpoint.
    first = _run(tmp_path / "cut", ["train.stop_after_steps=7"])
    assert first.stopped_early
    assert (tmp_path / "cut" / "checkpoints" / "last").resolve().name == "epoch-0001"
    _run(tmp_path / "cut", resume=tmp_path / "cut")
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    for key in full:
        torch.testing.assert_close(resumed[key], full[key], rtol=1e-5, atol=1e-6)
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "cut" / "metrics.jsonl").open()]
    assert epochs == [1, 2, 3]
    # the training curve: the batch loss every log_every (10) steps, once each after resuming
    logs = {
        name: [json.loads(x) for x in (tmp_path / name / "train_log.jsonl").open()]
        for name in ("full", "cut")
    }
    assert [r["step"] for r in logs["cut"]] == [r["step"] for r in logs["full"]] == [10]
    assert logs["cut"][0]["loss"] == pytest.approx(logs["full"][0]["loss"], rel=1e-5)
    assert logs["full"][0]["epoch"] == 2 and logs["full"][0]["lr"] > 0


def test_a_resumed_run_counts_the_training_time_of_its_earlier_parts(tmp_path):
    first = _run(tmp_path / "cut", ["train.stop_after_steps=7"])
    progress_file = tmp_path / "cut" / "checkpoints" / "last" / "training_state" / "progress.json"
    progress = json.loads(progress_file.read_text())
    assert 0 < progress["train_seconds"] <= first.total_train_seconds
    assert first.total_train_seconds == pytest.approx(first.train_seconds, abs=0.05)
    assert progress["train_cpu_seconds"] > 0
    # the earlier part as the checkpoint says it took: added to the resumed part
    progress_file.write_text(
        json.dumps({**progress, "train_seconds": 1000.0, "train_cpu_seconds": 500.0})
    )
    resumed = _run(tmp_path / "cut", resume=tmp_path / "cut")
    assert resumed.total_train_seconds == pytest.approx(1000.0 + resumed.train_seconds, abs=0.05)
    assert 500.0 < resumed.total_cpu_seconds < 500.0 + resumed.train_seconds * 4  # 4 threads

    # a checkpoint written before the time was recorded: the total is unknown, not a part
    again = _run(tmp_path / "old", ["train.stop_after_steps=7"])
    assert again.stopped_early
    old_file = tmp_path / "old" / "checkpoints" / "last" / "training_state" / "progress.json"
    older = {k: v for k, v in json.loads(old_file.read_text()).items() if "seconds" not in k}
    old_file.write_text(json.dumps(older))
    unknown = _run(tmp_path / "old", resume=tmp_path / "old")
    assert unknown.total_train_seconds is None and unknown.total_cpu_seconds is None
    assert unknown.train_seconds > 0


def test_resume_from_mid_epoch_checkpoint_matches(tmp_path):
    _run(tmp_path / "full")
    _run(tmp_path / "cut", ["train.checkpoint_every_steps=3", "train.stop_after_steps=8"])
    assert (tmp_path / "cut" / "checkpoints" / "last").resolve().name == "step-0000006"
    _run(tmp_path / "cut", ["train.checkpoint_every_steps=3"], resume=tmp_path / "cut")
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    for key in full:
        torch.testing.assert_close(resumed[key], full[key], rtol=1e-5, atol=1e-6)


def test_kill_during_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    _run(tmp_path, ["train.epochs=1"])
    root = tmp_path / "checkpoints"
    before = (root / "last").resolve()

    def dying_save(obj, path):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(ckpt, "save_tensors", dying_save)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, ["train.epochs=2"], resume=tmp_path)
    assert (root / "last").resolve() == before
    assert ckpt.find_resume_checkpoint(tmp_path) == before
    assert list(root.glob("*.tmp"))  # the half-written folder is there, and ignored
    monkeypatch.undo()
    summary = _run(tmp_path, ["train.epochs=2"], resume=tmp_path)
    assert summary.epochs_done == 2
    assert not list(root.glob("*.tmp"))


def test_non_finite_loss_stops_and_keeps_last_good(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss.*epoch-0001"):
        _run(tmp_path, task=ToyTask(nan_at_step=8))
    assert (tmp_path / "checkpoints" / "last").resolve().name == "epoch-0001"


def test_resume_without_checkpoint_is_clear(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="no complete checkpoint"):
        ckpt.find_resume_checkpoint(tmp_path)


def test_optimizer_state_is_loaded_without_unpickling_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "optimizer.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(ckpt.CheckpointError, match="cannot be read safely"):
        ckpt.load_tensors(path)


def test_compile_option_compiles_in_place_and_trains_the_same(tmp_path):
    from torch._dynamo import register_backend, reset

    graphs = []

    @register_backend(name="counting_eager_test")
    def counting(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    reset()
    _run(tmp_path / "eager", ["train.epochs=1"])
    _run(tmp_path / "compiled", ["train.epochs=1", "train.compile=counting_eager_test"])
    assert graphs  # the forward really went through torch.compile
    eager, compiled = _weights(tmp_path / "eager"), _weights(tmp_path / "compiled")
    assert compiled.keys() == eager.keys()  # no "_orig_mod." prefixes in the checkpoint
    for key in eager:
        torch.testing.assert_close(compiled[key], eager[key], rtol=1e-5, atol=1e-6)


def test_fit_returns_a_plain_summary(tmp_path):
    summary = _run(tmp_path, ["train.epochs=1"])
    assert isinstance(summary, TrainSummary)
    fields = dataclasses.asdict(summary)  # plain values only: no model, no accelerator
    assert json.loads(json.dumps(fields)) == fields
    assert summary.epochs_done == 1 and summary.global_step == 5 and summary.is_main_process
    assert (
        summary.best_metric == "score" and summary.best_value == summary.last_eval["val"]["score"]
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.epochs_done = 2


def test_cuda_rng_states_are_saved_and_restored_where_cuda_exists(monkeypatch):
    # a CPU-only machine stands in for a CUDA one: the CUDA RNG calls are recorded
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "get_rng_state_all", lambda: [torch.tensor([1, 2, 3], dtype=torch.uint8)]
    )
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: restored.extend(states))
    state = ckpt.capture_rng()
    assert state["cuda"] == [[1, 2, 3]]
    json.dumps(state)  # stored as JSON in the checkpoint
    ckpt.restore_rng(state)
    assert [s.tolist() for s in restored] == [[1, 2, 3]]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "cuda" not in ckpt.capture_rng()
    ckpt.restore_rng(state)  # a CUDA checkpoint resumed on a CPU: the CUDA part is not applied
    assert len(restored) == 1


def _complete_checkpoint(root: Path, name: str, progress: str | None) -> Path:
    state = root / name / ckpt.STATE_DIR
    state.mkdir(parents=True)
    (state / ckpt.COMPLETE_MARK).write_text("")
    if progress is not None:
        (state / ckpt.PROGRESS_FILE).write_text(progress)
    return root / name


def test_resume_without_last_takes_the_highest_step_not_the_last_name(tmp_path):
    # by name "step-10" < "step-9"; by the step they hold, 10 > 9
    _complete_checkpoint(tmp_path, "step-9", '{"global_step": 9}')
    newest = _complete_checkpoint(tmp_path, "step-10", '{"global_step": 10}')
    assert ckpt.find_resume_checkpoint(tmp_path) == newest.resolve()


@pytest.mark.parametrize(
    "progress",
    [None, "{not json", '{"epoch": 3}', '{"global_step": null}', "[1, 2]"],
    ids=["missing", "corrupt", "no-step", "null-step", "not-a-mapping"],
)
def test_a_checkpoint_with_unreadable_progress_sorts_below_every_readable_one(tmp_path, progress):
    good = _complete_checkpoint(tmp_path, "a-good", '{"global_step": 0}')
    _complete_checkpoint(tmp_path, "z-odd", progress)  # the later name, but no usable step
    assert ckpt.find_resume_checkpoint(tmp_path) == good.resolve()


def test_a_folder_that_cannot_be_fsynced_is_not_an_error(tmp_path, monkeypatch):
    def refuse(fd):
        raise OSError("fsync not supported for directories here")

    monkeypatch.setattr(os, "fsync", refuse)
    ckpt._fsync_dir(tmp_path)  # some file systems refuse it: the save goes on
