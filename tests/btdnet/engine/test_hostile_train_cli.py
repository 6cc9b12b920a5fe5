"""The training command: library errors are one line and exit 1; --resume takes any checkpoint."""

from __future__ import annotations

import json

import pytest
import yaml

from btdnet.data.errors import DatasetError
from btdnet.engine.cli import main
from btdnet.task import ReferringTask
from tests.toy_task import ToyTask

CONFIG = {
    "seed": 3,
    "data": {"n": 24},
    "train": {"epochs": 2, "batch_size": 8, "lr": 0.05, "trackers": "none"},
}


def _config(tmp_path, **train) -> str:
    config = json.loads(json.dumps(CONFIG))
    config["train"].update(train)
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


class BrokenData(ToyTask):
    def build_datasets(self, model):
        raise DatasetError("datasets/rrsisd/refs(unc).p: truncated pickle")


def test_dataset_error_is_one_line_and_exit_1(tmp_path, capsys) -> None:
    argv = ["--config", _config(tmp_path), "--output-dir", str(tmp_path / "run"), "--no-progress"]
    assert main(BrokenData.from_config, prog="train.py", description="", argv=argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == "train.py: error: datasets/rrsisd/refs(unc).p: truncated pickle"


def test_multi_line_library_error_is_cut_to_one_line(tmp_path, capsys) -> None:
    class Multi(ToyTask):
        def build_model(self):
            raise OSError("weights/x.bin: unreadable\n  at byte 12\n  more detail")

    argv = ["--config", _config(tmp_path), "--output-dir", str(tmp_path / "run"), "--no-progress"]
    assert main(Multi.from_config, prog="train.py", description="", argv=argv) == 1
    assert capsys.readouterr().err.strip() == "train.py: error: weights/x.bin: unreadable"


@pytest.mark.parametrize("named", ["checkpoints/epoch-0001", "checkpoints/last", "checkpoints"])
def test_resume_from_a_checkpoint_folder(tmp_path, capsys, named) -> None:
    run = tmp_path / "run"
    first = ["--config", _config(tmp_path, stop_after_steps=4), "--output-dir", str(run)]
    assert main(ToyTask.from_config, prog="t", description="", argv=[*first, "--no-progress"]) == 0
    assert (run / "checkpoints" / "last").resolve().name == "epoch-0001"
    # No --config: the run's config.yaml is found above the checkpoint folder.
    argv = ["--resume", str(run / named), "--set", "train.stop_after_steps=null", "--no-progress"]
    assert main(ToyTask.from_config, prog="t", description="", argv=argv) == 0, (
        capsys.readouterr().err
    )
    assert (run / "checkpoints" / "last").resolve().name == "epoch-0002"


class StopAfterData(ReferringTask):
    """The referring task up to its data: stops with a library error once the set is written."""

    def build_model(self):
        raise OSError("stopped after the data")


@pytest.mark.parametrize("quiet", [True, False])
def test_no_progress_reaches_the_synthetic_generator(tmp_path, capsys, quiet) -> None:
    config = {
        "model": {"variant": "tiny", "pretrained": False},
        "data": {
            "dataset": "rrsisd",
            "root": str(tmp_path / "data"),
            "generate_synthetic": {"train": 2, "val": 1, "test": 1, "size": 64, "seed": 1},
        },
        "train": {"trackers": "none"},
    }
    path = tmp_path / "synthetic.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = ["--config", str(path), "--output-dir", str(tmp_path / "run")]
    argv += ["--no-progress"] if quiet else []
    assert main(StopAfterData.from_config, prog="train_rrsis.py", description="", argv=argv) == 1
    err = capsys.readouterr().err
    assert (tmp_path / "data" / "rrsisd" / "instances.json").is_file()
    assert err.strip().endswith("train_rrsis.py: error: stopped after the data")
    assert ("synthetic RRSIS-D" in err) is not quiet
