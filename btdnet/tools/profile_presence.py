"""Cost of the generalized-referring presence head: BTDNet with and without it, in one run.

Builds the variant twice from the same seed (``use_presence`` off / on), then reports
parameters, GFLOPs per sample of one forward (torch.utils.flop_counter.FlopCounterMode) and
forward time (median over ``--steps`` repetitions, the two models timed alternately so that
their ratio survives a changing machine load; process CPU time beside wall time).
``--flops-only`` skips the timing (for the large variants on a small CPU).

    python scripts/profile_presence.py --variant demo --batch-size 8 --steps 10
    python scripts/profile_presence.py --variant paper --flops-only
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from btdnet.cli_options import add_threads_option
from btdnet.models import build_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--variant", default="demo", help="BTDNet variant (default: demo)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="timed repetitions per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed repetitions per model")
    add_threads_option(parser, default=1)
    parser.add_argument("--flops-only", action="store_true", help="no timing")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def _inputs(model: torch.nn.Module, batch: int) -> tuple[torch.Tensor, ...]:
    size, tokens = model.config.image_size, model.config.max_tokens
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch, 3, size, size, generator=generator)
    ids = torch.randint(1000, 2000, (batch, tokens), generator=generator)
    return pixels, ids, torch.ones(batch, tokens, dtype=torch.long)


def _gflops(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    return counter.get_total_flops() / 1e9 / inputs[0].shape[0]


def _time(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        model(*inputs)
    return time.perf_counter() - wall, time.process_time() - cpu


def profile(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    models = {}
    for name, flag in (("without", False), ("with", True)):
        torch.manual_seed(0)
        models[name] = build_model(
            args.variant, pretrained=False, training=False, use_presence=flag
        ).eval()
    inputs = _inputs(models["without"], args.batch_size)
    report: dict = {"variant": args.variant, "batch_size": args.batch_size}
    for name, model in models.items():
        report[f"params_{name}"] = sum(p.numel() for p in model.parameters())
        report[f"gflops_{name}"] = _gflops(model, inputs)
    report["params_head"] = report["params_with"] - report["params_without"]
    report["gflops_ratio"] = report["gflops_with"] / report["gflops_without"]
    if args.flops_only:
        return report
    samples: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
    for step in range(args.warmup + args.steps):
        for name, model in models.items():
            measured = _time(model, inputs)
            if step >= args.warmup:
                samples[name].append(measured)
    for name, rows in samples.items():
        report[f"forward_ms_{name}"] = 1000 * statistics.median(w for w, _ in rows)
        report[f"forward_cpu_ms_{name}"] = 1000 * statistics.median(c for _, c in rows)
    ratios = [w1 / w0 for (w0, _), (w1, _) in zip(samples["without"], samples["with"])]
    report["time_ratio"] = statistics.median(ratios)
    return report


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = profile(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"variant {report['variant']}, batch {report['batch_size']}")
    print(
        f"parameters: {report['params_without']:,} -> {report['params_with']:,} "
        f"(+{report['params_head']:,} in the presence head)"
    )
    print(
        f"GFLOPs per sample: {report['gflops_without']:.4f} -> {report['gflops_with']:.4f} "
        f"(x{report['gflops_ratio']:.5f})"
    )
    if "time_ratio" in report:
        print(
            f"forward per batch: {report['forward_ms_without']:.1f} ms -> "
            f"{report['forward_ms_with']:.1f} ms wall (CPU {report['forward_cpu_ms_without']:.1f}"
            f" -> {report['forward_cpu_ms_with']:.1f} ms); median paired ratio "
            f"x{report['time_ratio']:.3f}"
        )


if __name__ == "__main__":
    main()
