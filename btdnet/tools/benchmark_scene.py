"""Benchmark scene-scale prediction: wall time, tiles/s, km^2/min and peak memory vs scene size.

Writes synthetic 3-band uint8 GeoTIFF scenes (0.5 m pixels, UTM 33N, tiled, written strip by
strip) of the requested sides, then runs ``Predictor.predict_scene`` on each with a
random-weight model of each variant, every run in its own process so that its peak resident
memory (``ru_maxrss``) is its own. Prints a Markdown table and writes it as JSON.

    python scripts/benchmark_scene.py --sizes 3000 7000 15000 --variants tiny demo small \\
        --out runs/benchmark_scene

Targets: peak RSS of the largest scene within 10% of the smallest scene's (memory
does not grow with the scene) and time per pixel within +-20% (time linear in the area). Time
per pixel is taken from the process's CPU time (user + system), which a machine shared with
other jobs disturbs far less than wall time; both are reported.
Each run first predicts a small 256^2 scene untimed (``--no-warmup`` to skip), so that
one-time process costs (imports, first forward) are not counted as time growing with the scene.
Random weights: the masks (and the object counts) mean nothing; only the costs do.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from btdnet.cli_options import add_device_option, add_threads_option
from btdnet.safe_write import write_text_atomic

PIXEL_M = 0.5
WARMUP_SIDE = 256


def _pattern(seed: int) -> np.ndarray:
    """uint8 (3, 512, 512) block: smooth fields with bright "roofs" (repeated over the scene)."""
    y, x = np.mgrid[0:512, 0:512].astype(np.float32)
    base = 90 + 40 * np.sin(x / 97.0) * np.cos(y / 131.0)  # (512, 512)
    block = np.stack([base, base * 0.9 + 10, base * 0.8 + 20]).astype(np.uint8)
    rng = np.random.default_rng(seed)
    for _ in range(24):
        r, c = rng.integers(0, 500), rng.integers(0, 490)
        colour = (220, 210, 200) if c % 2 else (200, 40, 40)
        block[:, r : r + 12, c : c + 20] = np.array(colour, dtype=np.uint8)[:, None, None]
    return block


def write_scene(path: Path, side: int, seed: int = 0) -> Path:
    """A side x side synthetic 3-band uint8 GeoTIFF (tiled, uncompressed), written by strips."""
    import rasterio
    from rasterio.windows import Window

    if path.is_file():
        return path
    profile = {
        "driver": "GTiff",
        "height": side,
        "width": side,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": rasterio.Affine(PIXEL_M, 0, 500000.0, 0, -PIXEL_M, 5400000.0),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "BIGTIFF": "IF_SAFER",
    }
    block = _pattern(seed)
    repeats = -(-side // 512)
    row = np.tile(block, (1, 1, repeats))  # (3, 512, repeats * 512)
    partial = path.with_suffix(".partial.tif")
    with rasterio.open(partial, "w", **profile) as dst:
        for top in range(0, side, 512):
            rows = min(512, side - top)
            dst.write(row[:, :rows, :side], window=Window(0, top, side, rows))
    os.replace(partial, path)
    return path


def worker(args: argparse.Namespace) -> None:
    """One run in this process; prints one JSON line."""
    import torch

    from btdnet.models import build_model
    from btdnet.predict.predictor import Predictor

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    predictor = Predictor(
        build_model(args.variant, pretrained=False, training=False),
        device=args.device,
        batch_size=args.batch_size,
    )
    if args.warmup:
        # One-time process costs (imports, first forward, GDAL drivers) are paid on a small
        # scene first, so that the timed run measures what grows with the scene.
        warm = write_scene(Path(args.scene).parent / f"scene_{WARMUP_SIDE}.tif", WARMUP_SIDE)
        predictor.predict_scene(warm, "the red roofs", args.out, name=f"{args.variant}_warmup")
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    started = time.perf_counter()
    result = predictor.predict_scene(
        args.scene, "the red roofs", args.out, name=f"{args.variant}_{Path(args.scene).stem}"
    )
    wall = time.perf_counter() - started
    record = result.record
    area_km2 = record["height"] * record["width"] * PIXEL_M**2 / 1e6
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = usage.ru_maxrss  # KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    print(
        json.dumps(
            {
                "variant": args.variant,
                "side": record["height"],
                "tile": record["tile"],
                "overlap": record["overlap"],
                "tiles": record["tiles"],
                "objects": record["objects"],
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "cpu_us_per_pixel": round(cpu / (record["height"] * record["width"]) * 1e6, 4),
                "tiles_per_s": round(record["tiles"] / wall, 2),
                "km2_per_min": round(area_km2 / (wall / 60.0), 3),
                "us_per_pixel": round(wall / (record["height"] * record["width"]) * 1e6, 4),
                "peak_rss_mib": round(peak_kib / 1024.0, 1),
            }
        )
    )


def run_one(args: argparse.Namespace, variant: str, scene: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "btdnet.tools.benchmark_scene",
        "--worker",
        "--variant",
        variant,
        "--scene",
        str(scene),
        "--out",
        str(args.out / "outputs"),
        "--device",
        args.device,
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
    ]
    if not args.no_warmup:
        command.append("--warmup")
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"run {variant} {scene} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = [
        "| variant | scene | tiles | wall s | CPU s | tiles/s | km²/min | CPU µs/pixel "
        "| peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['side']}² | {row['tiles']} | {row['wall_s']} | "
            f"{row['cpu_s']} | {row['tiles_per_s']} | {row['km2_per_min']} | "
            f"{row['cpu_us_per_pixel']} | "
            f"{row['peak_rss_mib']} |"
        )
    return "\n".join(lines)


def targets(rows: list[dict]) -> list[str]:
    """Per variant: peak RSS and time-per-pixel of the largest vs the smallest scene."""
    lines = []
    for variant in dict.fromkeys(row["variant"] for row in rows):
        runs = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["side"])
        if len(runs) < 2:
            continue
        small, large = runs[0], runs[-1]
        rss = large["peak_rss_mib"] / small["peak_rss_mib"]
        time_ratio = large["cpu_us_per_pixel"] / small["cpu_us_per_pixel"]
        lines.append(
            f"{variant}: peak RSS {large['side']}²/{small['side']}² = {rss:.3f} "
            f"({'ok' if rss <= 1.10 else 'over'} 1.10); CPU time per pixel = {time_ratio:.3f} "
            f"({'ok' if 0.8 <= time_ratio <= 1.2 else 'outside'} 0.8-1.2)"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 7000, 15000])
    parser.add_argument("--variants", nargs="+", default=["tiny", "demo"])
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark_scene"))
    add_device_option(parser)
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per forward pass")
    add_threads_option(parser, default=1)
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="time the first scene of each process too (by default every run first predicts "
        f"a {WARMUP_SIDE}x{WARMUP_SIDE} scene untimed, so that imports and the first forward "
        "do not count as time that grows with the scene; peak RSS includes it)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--scene", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    scenes = {side: write_scene(args.out / f"scene_{side}.tif", side) for side in args.sizes}
    rows = []
    for variant in args.variants:
        for side in args.sizes:
            row = run_one(args, variant, scenes[side])
            print(json.dumps(row), flush=True)
            rows.append(row)
    report = table(rows)
    summary = targets(rows)
    print(report)
    print("\n".join(summary))
    write_text_atomic(
        args.out / "results.json", json.dumps({"rows": rows, "targets": summary}, indent=1)
    )


if __name__ == "__main__":
    main()
