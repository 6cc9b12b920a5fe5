"""Measuring a model: FLOPs, paired wall/CPU times, per-phase step times, peak memory, MFU.

Used by ``scripts/profile_model.py``. Times are medians after warm-up; CUDA work is
synchronised before every clock read.
"""

from __future__ import annotations

import ctypes
import gc
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psutil
import torch
from torch.utils.flop_counter import FlopCounterMode

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, matched
# against torch.cuda.get_device_name(). Order matters: the first substring found wins.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10", 125.0),
)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``), so that RSS tracks live memory."""
    gc.collect()
    # Not glibc: nothing to do, RSS then keeps the allocator's high-water mark.
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, float]]:
    """Yield a dict holding ``peak_mb`` and ``increase_mb`` (over the start) after the block.

    CUDA: ``max_memory_allocated``. CPU: process RSS sampled every 5 ms, after freed heap pages
    were handed back, so ``increase_mb`` approximates the memory the block itself needs.
    """
    result: dict[str, float] = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        yield result
        peak = torch.cuda.max_memory_allocated(device)
        result["peak_mb"], result["increase_mb"] = peak / 2**20, (peak - start) / 2**20
        return
    release_free_memory()
    process = psutil.Process()
    start_rss = process.memory_info().rss
    peak_rss = [start_rss]
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.005):
            peak_rss[0] = max(peak_rss[0], process.memory_info().rss)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        peak = max(peak_rss[0], process.memory_info().rss)
        result["peak_mb"], result["increase_mb"] = peak / 2**20, (peak - start_rss) / 2**20


@dataclass
class PairTiming:
    """Medians of two alternately timed functions, wall clock and process CPU time."""

    wall: tuple[float, float]
    cpu: tuple[float, float]
    wall_ratio: float
    cpu_ratio: float


def paired_seconds(
    first: Callable[[], Any],
    second: Callable[[], Any],
    *,
    steps: int,
    warmup: int,
    device: torch.device,
) -> PairTiming:
    """Time two functions alternately; medians and the median per-pair ratio.

    Alternating keeps the ratio meaningful on a machine whose load changes during the run; the
    process CPU time (all threads) is also kept, as it hardly counts time spent waiting for a
    core that another process holds.
    """
    for _ in range(warmup):
        first()
        second()
    synchronize(device)
    wall: tuple[list[float], list[float]] = ([], [])
    cpu: tuple[list[float], list[float]] = ([], [])
    for _ in range(steps):
        for index, fn in enumerate((first, second)):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            synchronize(device)
            wall[index].append(time.perf_counter() - start)
            cpu[index].append(time.process_time() - start_cpu)
    return PairTiming(
        wall=(statistics.median(wall[0]), statistics.median(wall[1])),
        cpu=(statistics.median(cpu[0]), statistics.median(cpu[1])),
        wall_ratio=statistics.median(a / b for a, b in zip(*wall)),
        cpu_ratio=statistics.median(a / b for a, b in zip(*cpu)),
    )


def gflops(fn: Callable[[], Any], batch: int) -> float:
    """GFLOPs per sample of one call of ``fn`` on a batch of ``batch`` samples."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / batch / 1e9


def step_breakdown(
    loss_fn: Callable[[], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    warmup: int,
    device: torch.device,
) -> dict[str, float]:
    """Median seconds of a training step's phases: forward (with the loss), backward, optimizer.

    Each phase is synchronised before its clock is read, so on CUDA the three add up to the
    step; ``step_s`` is the median of the per-step sums.
    """
    phases: dict[str, list[float]] = {"forward_s": [], "backward_s": [], "optimizer_s": []}
    sums: list[float] = []
    for index in range(warmup + steps):
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        t0 = time.perf_counter()
        loss = loss_fn()
        synchronize(device)
        t1 = time.perf_counter()
        loss.backward()
        synchronize(device)
        t2 = time.perf_counter()
        optimizer.step()
        synchronize(device)
        t3 = time.perf_counter()
        if index >= warmup:
            for key, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2)):
                phases[key].append(seconds)
            sums.append(t3 - t0)
    result = {key: statistics.median(values) for key, values in phases.items()}
    result["step_s"] = statistics.median(sums)
    return result


def peak_bf16_tflops(device: torch.device) -> float | None:
    """The device's dense bf16 peak in TFLOP/s when known (CUDA only), else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)


def model_flops_utilization(
    forward_gflops_per_sample: float, samples_per_second: float, peak_tflops: float
) -> float:
    """MFU in percent: training FLOPs (3x the forward: forward + backward's two products) per
    second over the device's peak."""
    achieved = 3.0 * forward_gflops_per_sample * 1e9 * samples_per_second
    return 100.0 * achieved / (peak_tflops * 1e12)
