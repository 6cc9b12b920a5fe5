"""Load test of btdnet-serve: p50/p95 latency and requests/s at several numbers of clients.

Starts ``btdnet-serve`` on 127.0.0.1 in a child process (or uses a running server given with
--url), posts the same image with one expression from N concurrent clients, and prints one
line per concurrency level. Every answer is checked (HTTP 200, one prediction per text).

    python scripts/load_test.py --checkpoint runs/demo/train/checkpoints/best
    python scripts/load_test.py --url http://127.0.0.1:8000 --clients 1 4 16 --requests 48
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from btdnet.cli_options import add_device_option


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--checkpoint", help="checkpoint folder or Hub repo id to serve")
    where.add_argument("--url", help="base URL of a running btdnet-serve")
    parser.add_argument("--image", type=Path, help="image to post (default: a synthetic one)")
    parser.add_argument("--size", type=int, default=256, help="synthetic image side (default 256)")
    parser.add_argument("--text", default="the white storage tank at the bottom right")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=32, help="requests per level (default 32)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests first")
    add_device_option(parser)
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    return parser.parse_args(argv)


def image_bytes(args: argparse.Namespace) -> tuple[str, bytes]:
    if args.image is not None:
        return args.image.name, args.image.read_bytes()
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "synthetic.png", buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(checkpoint: str, device: str) -> tuple[subprocess.Popen, str]:
    """Run btdnet-serve in a child process; return it and its URL once /health answers."""
    import httpx

    port = free_port()
    command = [
        sys.executable,
        "-m",
        "btdnet.serve.cli",
        "--checkpoint",
        checkpoint,
        "--port",
        str(port),
        "--device",
        device,
        "--max-queue",
        "256",
    ]
    process = subprocess.Popen(command, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"load_test: btdnet-serve exited with status {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("load_test: btdnet-serve did not start within 300 s")


def run_level(url: str, name: str, data: bytes, text: str, clients: int, total: int) -> dict:
    """``total`` requests from ``clients`` concurrent clients; latency percentiles and rate."""
    import httpx

    def one(_: int) -> float:
        start = time.perf_counter()
        response = httpx.post(
            url + "/predict", files={"image": (name, data)}, data={"text": text}, timeout=600
        )
        elapsed = time.perf_counter() - start
        if response.status_code != 200 or len(response.json()["predictions"]) != 1:
            raise RuntimeError(f"bad answer {response.status_code}: {response.text[:200]}")
        return elapsed

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        latencies = np.array(list(pool.map(one, range(total))))
    wall = time.perf_counter() - start
    return {
        "clients": clients,
        "requests": total,
        "p50_s": round(float(np.percentile(latencies, 50)), 4),
        "p95_s": round(float(np.percentile(latencies, 95)), 4),
        "requests_per_s": round(total / wall, 3),
        "wall_s": round(wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name, data = image_bytes(args)
    process = None
    url = args.url.rstrip("/") if args.url else None
    if url is None:
        process, url = start_server(args.checkpoint, args.device)
    try:
        import httpx

        health = httpx.get(url + "/health", timeout=10).json()
        print(
            f"server: {url} model {health['model']} on {health['device']}; image {name} "
            f"({len(data)} bytes); cpu cores {os.cpu_count()}"
        )
        for _ in range(args.warmup):
            run_level(url, name, data, args.text, 1, 1)
        results = []
        print("clients  requests  p50_s   p95_s   req/s")
        for clients in args.clients:
            row = run_level(url, name, data, args.text, clients, max(args.requests, clients))
            results.append(row)
            print(
                f"{row['clients']:>7}  {row['requests']:>8}  {row['p50_s']:<6.3f}  "
                f"{row['p95_s']:<6.3f}  {row['requests_per_s']:.2f}"
            )
        if args.json:
            args.json.write_text(json.dumps({"server": health, "levels": results}, indent=2))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
