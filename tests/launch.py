"""Run Python in child processes on the CPU, as the multi-process and command-line tests do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_env() -> dict[str, str]:
    """This environment with one thread, no GPU and this checkout first on the import path."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": path}


def run_python(
    args: list[str], *, processes: int = 1, timeout: float = 240
) -> subprocess.CompletedProcess:
    """``python ARGS`` with :func:`cpu_env`; with ``processes`` > 1 under
    ``torch.distributed.run --standalone`` (gloo on the CPU). Output is captured as text."""
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone"]
        launcher += ["--nproc_per_node", str(processes)]
    return subprocess.run(
        [*launcher, *args], capture_output=True, text=True, env=cpu_env(), timeout=timeout
    )


def accelerate_launch(
    args: list[str], *, processes: int, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``accelerate launch --num_processes N ARGS`` on the CPU with :func:`cpu_env`.

    accelerate starts several CPU processes through torchrun only with ``--multi_gpu`` (its
    ``--cpu`` needs MPI for more than one); with no GPU visible each process joins on gloo."""
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    launcher += ["--num_processes", str(processes), "--num_machines", "1"]
    launcher += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    return subprocess.run(
        [*launcher, *args], capture_output=True, text=True, env=cpu_env(), timeout=timeout
    )
