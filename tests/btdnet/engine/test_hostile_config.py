"""Hostile training configs: alias bombs, self-referring aliases, duplicate keys, non-UTF-8
files, deep nesting and values that would divide by zero: each refused with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from btdnet.engine.cli import main
from btdnet.engine.config import ConfigError, apply_overrides, load_config
from tests.toy_task import ToyTask

ROOT = Path(__file__).resolve().parents[3]

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)  # 9 levels of 9 aliases: 9**9 = 387 million strings once expanded


def _write(tmp_path: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_alias_bomb_is_refused_within_a_time_bound(tmp_path) -> None:
    path = _write(tmp_path, BOMB)
    script = (
        "import sys\nfrom btdnet.engine.config import ConfigError, load_config\n"
        "try:\n    load_config(sys.argv[1])\nexcept ConfigError as exc:\n"
        "    print(exc)\n    sys.exit(1)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=60,  # the unguarded loader runs for minutes
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 1, completed.stderr[-2000:]
    assert completed.stdout.strip() == (
        f"{path}: the document expands to more than 100,000 values (an alias bomb?)"
    )


def test_self_referring_alias_is_one_line(tmp_path) -> None:
    path = _write(tmp_path, "train: &t\n  epochs: 1\n  again: *t\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: line 1: an alias refers to the value that holds it"


def test_self_referring_alias_in_an_override_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^--set 'train.x=&a \[\*a\]': line 1: an alias"):
        apply_overrides({}, ["train.x=&a [*a]"])


def test_a_few_aliases_still_work(tmp_path) -> None:
    path = _write(tmp_path, "base: &b {lr: 1e-4}\ntrain: *b\nlist: [*b, *b]\n")
    config = load_config(path)
    assert config["train"] == {"lr": 1e-4} and config["list"] == [{"lr": 1e-4}] * 2


def test_duplicate_key_is_refused_with_its_line(tmp_path) -> None:
    path = _write(tmp_path, "train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.001\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: line 4: key 'lr' is given twice"


def test_non_utf8_config_is_named(tmp_path) -> None:
    path = _write(tmp_path, b"train:\n  name: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: not UTF-8 text (byte 18); save it as UTF-8"


def test_deep_nesting_is_one_line(tmp_path) -> None:
    path = _write(tmp_path, "a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: nested too deeply$"):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.grad_accum=0", "train.grad_accum: must be >= 1, got 0"),
        ("train.eval_every=0", "train.eval_every: must be >= 1, got 0"),
        ("train.warmup_steps=-10", "train.warmup_steps: must be >= 0, got -10"),
        ("train.log_every=-1", "train.log_every: must be >= 0, got -1"),
        ("train.lr=-1.0", "train.lr: must be a finite number > 0, got -1.0"),
        ("train.lr=0", "train.lr: must be a finite number > 0, got 0.0"),
        ("train.weight_decay=nan", "train.weight_decay: must be finite and >= 0, got nan"),
        ("train.warmup_ratio=1.5", "train.warmup_ratio: must lie in [0, 1], got 1.5"),
    ],
)
def test_values_that_would_divide_by_zero_exit_1_with_one_line(
    tmp_path, capsys, override, message
) -> None:
    config = _write(tmp_path, "seed: 3\ndata: {n: 24}\ntrain: {epochs: 1, trackers: none}\n")
    argv = ["--config", str(config), "--output-dir", str(tmp_path / "run"), "--no-progress"]
    status = main(ToyTask.from_config, prog="t", description="", argv=[*argv, "--set", override])
    assert status == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"t: error: {config}: {message}"]


def test_log_every_zero_means_no_step_lines() -> None:
    from btdnet.engine.trainer import TrainSettings

    assert TrainSettings(log_every=0).log_every == 0


def test_alias_bomb_stops_the_training_command_with_exit_1(tmp_path, capsys) -> None:
    config = _write(tmp_path, BOMB)
    argv = ["--config", str(config), "--output-dir", str(tmp_path / "run"), "--no-progress"]
    assert main(ToyTask.from_config, prog="t", description="", argv=argv) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("t: error: ") and "alias bomb" in line
