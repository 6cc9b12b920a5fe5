"""What machine a run was measured on: CPU model, cores, torch threads, accelerator.

Reports (the demo's ``metrics.json`` and page, benchmark tables) name the machine beside every
time they show, because a time means nothing without it.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name (Linux: /proc/cpuinfo's "model name"; elsewhere what the
    platform module says; "unknown CPU" when nothing says)."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_summary(cpuinfo: Path = CPUINFO) -> dict[str, Any]:
    """``{"cpu", "cpu_cores", "torch_threads", "accelerator"}`` of this process's machine;
    ``accelerator`` is the CUDA device's name, or None on a CPU-only run."""
    import torch

    accelerator = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(cpuinfo),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "accelerator": accelerator,
    }


def machine_line(summary: dict[str, Any]) -> str:
    """One line: ``AMD EPYC, 2 cores (2 torch threads), no GPU``."""
    device = summary.get("accelerator") or "no GPU"
    return (
        f"{summary['cpu']}, {summary['cpu_cores']} cores "
        f"({summary['torch_threads']} torch threads), {device}"
    )
