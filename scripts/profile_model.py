"""Profile a BTDNet variant against its bare encoders (Swin + text encoder alone), in one run.

Reports parameters, GFLOPs per sample of one forward (torch.utils.flop_counter.FlopCounterMode),
forward time and train-step time (forward with targets + backward + AdamW step; medians after
warm-up, BTDNet and bare encoders timed alternately so that their ratio survives a changing
machine load) and peak memory of one call (CUDA: max_memory_allocated; CPU: peak process RSS
sampled during the call, after freed heap pages were returned; "+N" is the increase the call
itself caused), then the BTDNet / bare-encoder ratios (ratio of times: median of the
per-pair ratios). Process CPU time is reported beside wall time: on a shared machine it is the
steadier measure of the work done.

    python scripts/profile_model.py --variant paper --batch-size 2 --steps 3 [--amp bf16] [--json]

On a CPU shared with other busy processes, ``--threads 1`` gives steady numbers: with more
threads than free cores every OpenMP barrier waits for a descheduled thread.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from typing import Any

import psutil
import torch
from torch.utils.flop_counter import FlopCounterMode

from btdnet.models import build_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--variant", default="small")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    parser.add_argument("--steps", type=int, default=5, help="timed repetitions per phase")
    parser.add_argument("--warmup", type=int, default=2, help="untimed repetitions per phase")
    parser.add_argument(
        "--tokens", type=int, default=None, help="expression length (default: the variant's)"
    )
    parser.add_argument("--image-size", type=int, default=None, help="override the variant's size")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--pretrained", action="store_true", help="load local encoder weights")
    parser.add_argument("--no-dmols", action="store_true", help="train step without D-MOLS heads")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


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
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / batch / 1e9


def profile(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {}
    if args.image_size:
        overrides["image_size"] = args.image_size
    model = build_model(
        args.variant, pretrained=args.pretrained, training=not args.no_dmols, **overrides
    ).to(device)
    size, batch = model.config.image_size, args.batch_size
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch, 3, size, size, generator=generator).to(device)
    tokens = args.tokens or model.config.max_tokens
    ids = torch.randint(1000, 5000, (batch, tokens), generator=generator)
    ids[:, 0], ids[:, -1] = 101, 102
    ids = ids.to(device)
    mask = torch.ones_like(ids)
    targets = torch.zeros(batch, size, size, device=device)
    targets[:, size // 4 : size // 2, size // 3 : 2 * size // 3] = 1
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else nullcontext
    timing = {"steps": args.steps, "warmup": args.warmup, "device": device}

    encoders = [model.image_encoder, model.text_encoder]
    encoder_params = [p for module in encoders for p in module.parameters()]

    def model_forward() -> None:
        with torch.no_grad(), autocast():
            model(pixels, ids, mask)

    def bare_forward() -> None:
        with torch.no_grad(), autocast():
            model.image_encoder(pixels)
            model.text_encoder(ids, mask)

    # fused=True: one kernel over all tensors (CPU and CUDA); grad-less parameters are skipped.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)

    def model_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = model(pixels, ids, mask, targets).loss
        loss.backward()
        optimizer.step()

    def bare_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            feats = model.image_encoder(pixels)
            text = model.text_encoder(ids, mask)
            loss = sum(f.float().mean() for f in feats) + text.words.float().mean()
        loss.backward()
        optimizer.step()

    report: dict[str, Any] = {
        "variant": args.variant,
        "image_size": size,
        "tokens": tokens,
        "batch_size": batch,
        "amp": args.amp,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    n_model = sum(p.numel() for p in model.parameters())
    n_heads = sum(p.numel() for p in model.dmols.parameters()) if model.dmols is not None else 0
    n_bare = sum(p.numel() for p in encoder_params)
    model.eval()
    ours: dict[str, Any] = {"params_m": n_model / 1e6}
    bare: dict[str, Any] = {"params_m": n_bare / 1e6}
    ours["gflops_per_sample"] = gflops(model_forward, batch)
    bare["gflops_per_sample"] = gflops(bare_forward, batch)
    forward = paired_seconds(model_forward, bare_forward, **timing)
    ours["forward_s"], bare["forward_s"] = forward.wall
    ours["forward_cpu_s"], bare["forward_cpu_s"] = forward.cpu
    model.train()
    step = paired_seconds(model_step, bare_step, **timing)
    ours["train_step_s"], bare["train_step_s"] = step.wall
    ours["train_step_cpu_s"], bare["train_step_cpu_s"] = step.cpu
    # One call each for memory, smaller first: CPU RSS (process total) never shrinks much.
    for entry, forward_fn, step_fn in (
        (bare, bare_forward, bare_step),
        (ours, model_forward, model_step),
    ):
        model.eval()
        with peak_memory(device) as mem:
            forward_fn()
        entry["forward_peak_mb"] = mem["peak_mb"]
        entry["forward_increase_mb"] = mem["increase_mb"]
        model.train()
        with peak_memory(device) as mem:
            step_fn()
        entry["train_peak_mb"] = mem["peak_mb"]
        entry["train_increase_mb"] = mem["increase_mb"]
    report["btdnet"], report["bare_encoders"] = ours, bare
    report["btdnet"]["inference_params_m"] = (n_model - n_heads) / 1e6
    report["ratio"] = {
        "gflops": ours["gflops_per_sample"] / bare["gflops_per_sample"],
        "forward_time": forward.wall_ratio,
        "train_step_time": step.wall_ratio,
        "forward_cpu_time": forward.cpu_ratio,
        "train_step_cpu_time": step.cpu_ratio,
    }
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"variant {report['variant']}  {report['image_size']}px  {report['tokens']} tokens  "
        f"batch {report['batch_size']}  amp {report['amp']}  {report['device']} "
        f"({report['threads']} threads)"
    ]
    for name in ("btdnet", "bare_encoders"):
        entry = report[name]
        line = (
            f"  {name:14s} params {entry['params_m']:8.2f} M  {entry['gflops_per_sample']:8.2f} "
            f"GFLOPs/sample  forward {entry['forward_s'] * 1e3:9.1f} ms"
        )
        line += f"  train step {entry['train_step_s'] * 1e3:9.1f} ms"
        line += (
            f"  peak fwd/train {entry['forward_peak_mb']:.0f}/{entry['train_peak_mb']:.0f} MB"
            f" (+{entry['forward_increase_mb']:.0f}/+{entry['train_increase_mb']:.0f})"
        )
        lines.append(line)
    if "inference_params_m" in report["btdnet"]:
        lines.append(
            "  btdnet inference params (no D-MOLS heads) "
            f"{report['btdnet']['inference_params_m']:.2f} M"
        )
    ratio = ", ".join(f"{k} {v:.3f}x" for k, v in report["ratio"].items())
    lines.append(f"  btdnet / bare encoders: {ratio}")
    lines.append(
        "  process CPU time (s): "
        + ", ".join(
            f"{name} forward {report[name]['forward_cpu_s']:.2f} "
            f"train {report[name]['train_step_cpu_s']:.2f}"
            for name in ("btdnet", "bare_encoders")
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = profile(args)
    print(json.dumps(report, indent=2) if args.json else format_report(report))


if __name__ == "__main__":
    main()
