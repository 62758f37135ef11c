"""Load check of `pixelseg serve` on loopback: N concurrent clients for a bounded time.

    python scripts/load_check.py --clients 2 --max-concurrent 2 --seconds 30 --model camvid

Starts the server in its own process, warms it up under the same load (``--warmup`` seconds), then every client
posts the same image to /api/segment in a loop. Reports requests/s, p50/p95 latency, errors by status (there must
be none while clients <= the server's concurrency limit) and the server's resident memory after the warm-up and
at the end (it must stay flat).
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_image(path: str | None) -> bytes:
    if path:
        return Path(path).read_bytes()
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--max-concurrent", type=int, default=2, help="the server's --max-concurrent")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=10, help="seconds of the same load before measuring")
    parser.add_argument("--model", default="camvid", help="model name, or method:NAME for a classical method")
    parser.add_argument("--image", help="image to post (default: a generated 480x360 PNG)")
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "pixelseg", "serve", "--port", str(port), "--max-concurrent",
                               str(args.max_concurrent)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    payload = test_image(args.image)
    form = {"method": args.model.split(":", 1)[1]} if args.model.startswith("method:") else {"model": args.model}
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        latencies, statuses, lock = [], Counter(), threading.Lock()
        stop = 0.0

        def client() -> None:
            with httpx.Client(timeout=120) as session:
                while time.time() < stop:
                    started = time.perf_counter()
                    try:
                        status = session.post(f"{url}/api/segment", files={"file": ("x.png", payload)},
                                              data=form).status_code
                    except httpx.HTTPError as error:
                        status = type(error).__name__
                    with lock:
                        latencies.append(time.perf_counter() - started)
                        statuses[status] += 1

        def load(seconds: float) -> float:
            nonlocal stop
            stop = time.time() + seconds
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            began = time.time()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return time.time() - began

        load(args.warmup)  # the model loads, the allocator's pools fill: not counted
        latencies.clear()
        statuses.clear()
        memory_before = resident_mb(server.pid)
        elapsed = load(args.seconds)
        memory_after = resident_mb(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    ok = statuses.get(200, 0)
    errors = {k: v for k, v in statuses.items() if k != 200}
    quantiles = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else [float("nan")] * 19
    print(f"{args.clients} client(s), server --max-concurrent {args.max_concurrent}, {args.seconds:.0f} s, "
          f"model {args.model}, {len(payload):,}-byte image")
    print(f"requests: {len(latencies)} ({ok} ok), {ok / elapsed:.2f} ok/s")
    print(f"latency: p50 {1000 * statistics.median(latencies):.0f} ms, p95 {1000 * quantiles[18]:.0f} ms")
    print(f"errors: {errors or 0}")
    print(f"server memory: {memory_before:.0f} MB after {args.warmup:.0f} s of warm-up, {memory_after:.0f} MB at "
          f"the end ({memory_after - memory_before:+.0f} MB)")


if __name__ == "__main__":
    main()
