"""A wheel of the project, installed into a fresh virtual environment and run from a folder
outside the repository, trains with a shipped config and writes a checkpoint.

Offline: the wheel is built without build isolation and installed without dependencies; the new
environment sees the running interpreter's packages through a .pth file (torch, timm, ...).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "btdnet", "bicor", "configs")
TINY_RUN = [
    "--set", "model.variant=tiny",
    "--set", "model.pretrained=false",
    "--set", "data.root=data",
    "--set", "data.image_size=64",
    "--set", "data.generate_synthetic={train: 2, val: 1, test: 1, size: 64, seed: 0}",
    "--set", "train.epochs=1",
    "--set", "train.batch_size=2",
    "--set", "train.eval_batch_size=2",
    "--set", "train.mixed_precision=no",
    "--set", "train.warmup_steps=0",
    "--set", "train.trackers=none",
]  # fmt: skip


def _run(command: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """A venv holding only the project's wheel (the rest comes from this interpreter's
    site-packages) and an environment without PYTHONPATH, so the checkout cannot be imported."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", PIP_NO_INDEX="1", OMP_NUM_THREADS="1")
    source = tmp / "source"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip"]
    wheels = tmp / "wheels"
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", source, "-w", wheels], tmp, env)
    (wheel,) = wheels.glob("btdnet-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, env)
    python = venv / "bin" / "python"
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env
    )
    Path(purelib.stdout.strip(), "parent-packages.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    _run([*pip, "--python", python, "install", "-q", "--no-deps", wheel], tmp, env)
    return venv, env


@pytest.mark.slow
def test_the_installed_training_command_trains_with_a_shipped_config(installed, tmp_path):
    venv, env = installed
    where = _run(
        [venv / "bin" / "python", "-c", "import btdnet; print(btdnet.__file__)"], tmp_path, env
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # not the checkout
    assert not (tmp_path / "synthetic.yaml").exists()  # the name resolves to the shipped config
    command = [venv / "bin" / "btdnet-train", "--config", "synthetic.yaml", "--output-dir", "out"]
    done = _run([*command, "--no-progress", *TINY_RUN], tmp_path, env)
    assert "\ndone: 1 epochs, " in done.stdout, done.stdout
    last = tmp_path / "out" / "checkpoints" / "last"
    assert (last / "model.safetensors").stat().st_size > 0
    assert '"variant": "tiny"' in (last / "config.json").read_text()
    assert "variant: tiny" in (tmp_path / "out" / "config.yaml").read_text()


@pytest.mark.slow
def test_the_installed_commands_and_modules_answer(installed, tmp_path):
    venv, env = installed
    for name in ("btdnet-benchmark", "bicor-train", "btdnet-demo", "btdnet-check-dataset"):
        assert "usage:" in _run([venv / "bin" / name, "--help"], tmp_path, env).stdout, name
    launch = [venv / "bin" / "python", "-m", "accelerate.commands.launch", "--cpu"]
    done = _run(
        [*launch, "--num_processes", "1", "-m", "btdnet.train_cli", "--help"], tmp_path, env
    )
    assert "-m btdnet.train_cli" in done.stdout  # the help's launch lines name the module
    missing = subprocess.run(
        [venv / "bin" / "btdnet-train", "--config", "nope.yaml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "nope.yaml: config file not found" in missing.stderr
    assert "synthetic.yaml" in missing.stderr  # the shipped names are listed
