"""One way to build the ``Accelerator`` for every entry point.

accelerate only selects its multi-process CPU mode (gloo) when told the run is on the CPU.
``accelerate launch`` on a machine without a GPU says so; ``torchrun`` does not, and each
process would silently train alone. This helper says so whenever several processes were
launched and no CUDA device is present.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from accelerate import Accelerator


def launched_world_size() -> int:
    """The number of processes the launcher started (1 when run directly)."""
    for key in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        value = os.environ.get(key)
        if value and value.isdigit():
            return int(value)
    return 1


def make_accelerator(**kwargs: Any) -> Accelerator:
    """``Accelerator(**kwargs)``, forcing the CPU backend for multi-process runs without CUDA."""
    if launched_world_size() > 1 and not torch.cuda.is_available():
        kwargs.setdefault("cpu", True)
    accelerator = Accelerator(**kwargs)
    if launched_world_size() != accelerator.num_processes:
        raise RuntimeError(
            f"{launched_world_size()} processes were launched but accelerate runs "
            f"{accelerator.num_processes} ({accelerator.distributed_type}); each process would "
            "work alone. Launch with `accelerate launch --multi_gpu --num_processes N` or "
            "torchrun."
        )
    return accelerator
