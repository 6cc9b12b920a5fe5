"""Profile a BTDNet variant against its bare encoders (Swin + text encoder alone), in one run.

Reports parameters, GFLOPs per sample of one forward (torch.utils.flop_counter.FlopCounterMode),
forward time and train-step time (forward with targets + backward + AdamW step; medians after
warm-up, BTDNet and bare encoders timed alternately so that their ratio survives a changing
machine load) and peak memory of one call (CUDA: max_memory_allocated; CPU: peak process RSS
sampled during the call, after freed heap pages were returned; "+N" is the increase the call
itself caused), then the BTDNet / bare-encoder ratios (ratio of times: median of the
per-pair ratios). Process CPU time is reported beside wall time: on a shared machine it is the
steadier measure of the work done.

The BTDNet training step is then broken into forward (with the loss), backward and optimizer
(fused AdamW, as the trainer uses), with samples/s; on CUDA also the peak memory and the MFU
(training FLOPs = 3x the forward's, over the device's dense bf16 peak; --peak-tflops for a
device not in btdnet.profiling.PEAK_BF16_TFLOPS). --compile measures the same step under
torch.compile (the trainer's `train.compile`), reporting the compile time separately.

    python scripts/profile_model.py --variant paper --batch-size 2 --steps 3 [--amp bf16] [--json]
    python scripts/profile_model.py --variant paper --batch-size 8 --amp bf16 --compile   # a GPU

On a CPU shared with other busy processes, ``--threads 1`` gives steady numbers: with more
threads than free cores every OpenMP barrier waits for a descheduled thread.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from btdnet.cli_options import add_amp_option, add_device_option, add_threads_option
from btdnet.engine.accelerator import resolve_mixed_precision
from btdnet.engine.optimizer import build_adamw
from btdnet.models import build_model
from btdnet.predict.predictor import AMP_DTYPES, resolve_device
from btdnet.profiling import (
    gflops,
    model_flops_utilization,
    paired_seconds,
    peak_bf16_tflops,
    peak_memory,
    step_breakdown,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--variant", default="small")
    parser.add_argument("--batch-size", type=int, default=2)
    add_amp_option(parser)
    parser.add_argument("--steps", type=int, default=5, help="timed repetitions per phase")
    parser.add_argument("--warmup", type=int, default=2, help="untimed repetitions per phase")
    parser.add_argument(
        "--tokens", type=int, default=None, help="expression length (default: the variant's)"
    )
    parser.add_argument("--image-size", type=int, default=None, help="override the variant's size")
    add_device_option(parser)
    add_threads_option(parser)
    parser.add_argument("--pretrained", action="store_true", help="load local encoder weights")
    parser.add_argument("--no-dmols", action="store_true", help="train step without D-MOLS heads")
    parser.add_argument(
        "--compile", action="store_true", help="also time the training step under torch.compile"
    )
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="device bf16 peak for MFU (CUDA)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


@dataclass
class Inputs:
    """One synthetic batch and the autocast context of the run."""

    pixels: torch.Tensor  # (B, 3, S, S)
    ids: torch.Tensor  # (B, T)
    mask: torch.Tensor  # (B, T)
    targets: torch.Tensor  # (B, S, S)
    autocast: Callable[[], Any]


def make_inputs(args: argparse.Namespace, model: torch.nn.Module, device: torch.device) -> Inputs:
    size, batch = model.config.image_size, args.batch_size
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch, 3, size, size, generator=generator).to(device)
    tokens = args.tokens or model.config.max_tokens
    ids = torch.randint(1000, 5000, (batch, tokens), generator=generator)
    ids[:, 0], ids[:, -1] = 101, 102
    targets = torch.zeros(batch, size, size, device=device)
    targets[:, size // 4 : size // 2, size // 3 : 2 * size // 3] = 1
    amp = resolve_mixed_precision(args.amp, cpu=device.type != "cuda")
    amp_dtype = AMP_DTYPES.get(amp)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else nullcontext
    ids = ids.to(device)
    return Inputs(pixels, ids, torch.ones_like(ids), targets, autocast)


def compare_with_bare(
    model: torch.nn.Module, x: Inputs, optimizer: torch.optim.Optimizer, timing: dict
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """BTDNet against its bare encoders: params, GFLOPs, paired times, peak memory, ratios."""
    batch = x.pixels.shape[0]
    encoders = [model.image_encoder, model.text_encoder]
    encoder_params = [p for module in encoders for p in module.parameters()]

    def model_forward() -> None:
        with torch.no_grad(), x.autocast():
            model(x.pixels, x.ids, x.mask)

    def bare_forward() -> None:
        with torch.no_grad(), x.autocast():
            model.image_encoder(x.pixels)
            model.text_encoder(x.ids, x.mask)

    def model_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with x.autocast():
            loss = model(x.pixels, x.ids, x.mask, x.targets).loss
        loss.backward()
        optimizer.step()

    def bare_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with x.autocast():
            feats = model.image_encoder(x.pixels)
            text = model.text_encoder(x.ids, x.mask)
            loss = sum(f.float().mean() for f in feats) + text.words.float().mean()
        loss.backward()
        optimizer.step()

    n_model = sum(p.numel() for p in model.parameters())
    n_heads = sum(p.numel() for p in model.dmols.parameters()) if model.dmols is not None else 0
    model.eval()
    ours: dict[str, Any] = {
        "params_m": n_model / 1e6,
        "inference_params_m": (n_model - n_heads) / 1e6,
    }
    bare: dict[str, Any] = {"params_m": sum(p.numel() for p in encoder_params) / 1e6}
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
        with peak_memory(timing["device"]) as mem:
            forward_fn()
        entry["forward_peak_mb"], entry["forward_increase_mb"] = mem["peak_mb"], mem["increase_mb"]
        model.train()
        with peak_memory(timing["device"]) as mem:
            step_fn()
        entry["train_peak_mb"], entry["train_increase_mb"] = mem["peak_mb"], mem["increase_mb"]
    ratio = {
        "gflops": ours["gflops_per_sample"] / bare["gflops_per_sample"],
        "forward_time": forward.wall_ratio,
        "train_step_time": step.wall_ratio,
        "forward_cpu_time": forward.cpu_ratio,
        "train_step_cpu_time": step.cpu_ratio,
    }
    return ours, bare, ratio


def train_step_report(
    net: torch.nn.Module,
    x: Inputs,
    optimizer: torch.optim.Optimizer,
    timing: dict,
    *,
    gflops_per_sample: float,
    peak_tflops: float | None,
) -> dict[str, Any]:
    """Forward/backward/optimizer medians of ``net``'s training step, samples/s, memory, MFU."""

    def loss_fn() -> torch.Tensor:
        with x.autocast():
            return net(x.pixels, x.ids, x.mask, x.targets).loss

    net.train()
    with peak_memory(timing["device"]) as mem:
        phases: dict[str, Any] = step_breakdown(loss_fn, optimizer, **timing)
    phases["samples_per_s"] = x.pixels.shape[0] / phases["step_s"]
    if timing["device"].type == "cuda":
        phases["peak_memory_mb"] = mem["peak_mb"]
    if peak_tflops:
        phases["mfu_percent"] = model_flops_utilization(
            gflops_per_sample, phases["samples_per_s"], peak_tflops
        )
    return phases


def profile(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {"image_size": args.image_size} if args.image_size else {}
    model = build_model(
        args.variant, pretrained=args.pretrained, training=not args.no_dmols, **overrides
    ).to(device)
    x = make_inputs(args, model, device)
    timing = {"steps": args.steps, "warmup": args.warmup, "device": device}
    # The trainer's optimizer: fused AdamW (one kernel over all tensors, CPU and CUDA).
    optimizer = build_adamw(model.parameters(), lr=1e-5, weight_decay=0.01)
    report: dict[str, Any] = {
        "variant": args.variant,
        "image_size": model.config.image_size,
        "tokens": x.ids.shape[1],
        "batch_size": args.batch_size,
        "amp": args.amp,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    report["btdnet"], report["bare_encoders"], report["ratio"] = compare_with_bare(
        model, x, optimizer, timing
    )
    step_args = {
        "gflops_per_sample": report["btdnet"]["gflops_per_sample"],
        "peak_tflops": args.peak_tflops or peak_bf16_tflops(device),
    }
    report["train_step"] = train_step_report(model, x, optimizer, timing, **step_args)
    if args.compile:
        compiled = torch.compile(model)
        start = time.perf_counter()  # the first step compiles forward and backward
        train_step_report(compiled, x, optimizer, {**timing, "steps": 1, "warmup": 0}, **step_args)
        compile_s = time.perf_counter() - start
        compiled_report = train_step_report(compiled, x, optimizer, timing, **step_args)
        report["train_step_compiled"] = {**compiled_report, "compile_s": compile_s}
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
    lines.append(
        "  btdnet inference params (no D-MOLS heads) "
        f"{report['btdnet']['inference_params_m']:.2f} M"
    )
    for key, label in (("train_step", "eager"), ("train_step_compiled", "compiled")):
        phases = report.get(key)
        if phases is None:
            continue
        line = (
            f"  train step ({label}) {phases['step_s'] * 1e3:.1f} ms = forward "
            f"{phases['forward_s'] * 1e3:.1f} + backward {phases['backward_s'] * 1e3:.1f} + "
            f"optimizer {phases['optimizer_s'] * 1e3:.1f} ms; "
            f"{phases['samples_per_s']:.2f} samples/s"
        )
        if "peak_memory_mb" in phases:
            line += f"; peak {phases['peak_memory_mb']:.0f} MB"
        if "mfu_percent" in phases:
            line += f"; MFU {phases['mfu_percent']:.1f}%"
        if "compile_s" in phases:
            line += f"; compile {phases['compile_s']:.1f} s"
        lines.append(line)
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
